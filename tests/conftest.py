"""Shared fixtures: databases (SQLite file and the real PostgreSQL server) and real server processes.

PostgreSQL tests skip with a visible reason where no server runs; under CI (CI=true) that skip
is a failure instead, so they can never silently stop running.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import FIXTURES, FLOWS, Server
from visionatrix.testing.llm_server import LLMServer

PG_ADMIN = os.environ.get("VIX_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _pg(sql: str) -> None:
    import asyncpg

    async def go() -> None:
        conn = await asyncpg.connect(PG_ADMIN, timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(go())


def _pg_unavailable() -> str | None:
    try:
        _pg("SELECT 1")
    except Exception as exc:  # any failure to connect means: no PostgreSQL here
        return f"PostgreSQL not reachable at {PG_ADMIN}: {exc}"
    return None


_PG_REASON = _pg_unavailable()


def pytest_configure(config: pytest.Config) -> None:
    # the real-flow tests skip where the shared fixtures are absent; CI must never lose them that way
    if os.environ.get("CI") and not FIXTURES.is_dir():
        raise pytest.UsageError(f"CI needs the shared fixtures at {FIXTURES} (set VIX_SHARED)")


@contextlib.contextmanager
def _database(kind: str, folder: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'vix.db'}"
        return
    if _PG_REASON:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the PostgreSQL tests: {_PG_REASON}")
        pytest.skip(_PG_REASON)
    name = f"vix_{uuid.uuid4().hex[:12]}"
    _pg(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        _pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of each kind."""
    with _database(request.param, tmp_path) as url:
        yield url


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One database of each kind for a whole module (its tests share one server)."""
    with _database(request.param, tmp_path_factory.mktemp("db")) as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'vix.db'}"


@contextlib.contextmanager
def _serving(tmp_path: Path, db_url: str, local_workers: int) -> Iterator[Server]:
    server = Server(tmp_path, db_url, local_workers=local_workers)
    server.start()
    try:
        server.install(FLOWS / "invert_image.json")
        yield server
    finally:
        server.stop()


@pytest.fixture
def vix_server(tmp_path: Path, db_url: str) -> Iterator[Server]:
    """DEFAULT mode: a real uvicorn server with one local worker, the invert_image test flow installed."""
    with _serving(tmp_path, db_url, local_workers=1) as server:
        yield server


@pytest.fixture
def idle_server(tmp_path: Path, db_url: str) -> Iterator[Server]:
    """DEFAULT mode with no local worker: tasks stay queued until a test claims them itself."""
    with _serving(tmp_path, db_url, local_workers=0) as server:
        yield server


@pytest.fixture(scope="module")
def llm_server() -> Iterator[LLMServer]:
    """A loopback server speaking Ollama's, Gemini's and OpenAI's wire protocols (one per module)."""
    with LLMServer() as server:
        yield server


@pytest.fixture
def llm(llm_server: LLMServer) -> LLMServer:
    """The module's LLM server with nothing seen, no canned answers, faults or delay."""
    llm_server.reset()
    return llm_server
