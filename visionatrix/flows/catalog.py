"""Installed and available flows: install (from the built-in catalog or a file), delete, progress.

Installing checks that the engine implements every node class of the flow (never a half-run)
and that its model files are on disk, downloading the missing ones in the background.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from visionatrix.db import flows as db_flows
from visionatrix.engine import registry
from visionatrix.errors import (
    Conflict,
    FlowNotInstalled,
    InvalidInput,
    MissingNodeClasses,
    NotFound,
    VixError,
)
from visionatrix.flows.model import Flow
from visionatrix.flows.parser import parse_flow
from visionatrix.models import catalog as model_catalog
from visionatrix.models.download import ensure_models

log = logging.getLogger(__name__)


def builtin_flows() -> dict[str, dict[str, Any]]:
    """The flows that ship with the package, by name."""
    found = {}
    for item in resources.files("visionatrix.builtin").joinpath("flows").iterdir():
        if item.name.endswith(".json"):
            graph = json.loads(item.read_text())
            found[parse_flow(graph).name] = graph
    return found


class FlowCatalog:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        models_dir: Path,
        hf_token: Callable[[], Any],
        node_modules: list[str] | None = None,
        changed: Callable[[], None] = lambda: None,
    ) -> None:
        registry.load_modules(node_modules or [])
        self.sessions = sessions
        self.models_dir = models_dir
        self.hf_token = hf_token  # async callable: the token from settings or the environment
        self.models = model_catalog.load_builtin_catalog()
        self.available = builtin_flows()
        self._installing: dict[str, asyncio.Task[None]] = {}
        # called on every install/delete: wakes long-polling workers to re-read what they can run
        self._changed = changed

    def describe(self, graph: dict[str, Any]) -> Flow:
        """Parse ``graph`` and fill in its models, refusing node classes the engine lacks."""
        flow = parse_flow(graph)
        lacking = registry.missing(registry.graph_classes(graph))
        if lacking:
            raise MissingNodeClasses(lacking)
        entries = model_catalog.match_graph(graph, self.models)
        flow.models = [_model_info(entry, self.models_dir) for entry in entries]
        return flow

    async def installed(self, session: AsyncSession) -> list[dict[str, Any]]:
        return [self._refresh(row.flow) for row in await db_flows.all_installed(session)]

    async def not_installed(self, session: AsyncSession) -> list[dict[str, Any]]:
        have = {row.name for row in await db_flows.all_installed(session)}
        return [self._listing(graph) for name, graph in sorted(self.available.items()) if name not in have]

    def _listing(self, graph: dict[str, Any]) -> dict[str, Any]:
        """A catalog flow as listed: installable or not, with what this engine lacks to run it."""
        try:
            return {**self.describe(graph).model_dump(), "missing_node_classes": []}
        except MissingNodeClasses as exc:
            return {**parse_flow(graph).model_dump(), "missing_node_classes": exc.classes}

    async def get(self, session: AsyncSession, name: str) -> tuple[Flow, dict[str, Any]]:
        row = await db_flows.get(session, name)
        if row is None:
            if name in self.available:
                raise FlowNotInstalled(f"flow '{name}' is not installed")
            raise NotFound(f"flow '{name}' not found")
        return Flow.model_validate(row.flow), row.graph

    def _refresh(self, flow: dict[str, Any]) -> dict[str, Any]:
        for model in flow.get("models", []):
            model["installed"] = (self.models_dir / model["folder"] / model["filename"]).is_file()
        return flow

    async def install_file(self, session: AsyncSession, raw: bytes) -> dict[str, Any]:
        try:
            graph = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidInput(f"flow file is not valid JSON: {exc}") from exc
        return await self.install(session, graph)

    async def install_named(self, session: AsyncSession, name: str) -> dict[str, Any]:
        if name not in self.available:
            raise NotFound(f"flow '{name}' is not in the catalog")
        return await self.install(session, self.available[name])

    async def install(self, session: AsyncSession, graph: dict[str, Any]) -> dict[str, Any]:
        """Install now when every model is on disk; else download in the background first."""
        flow = self.describe(graph)
        if flow.name in self._installing and not self._installing[flow.name].done():
            raise Conflict(f"flow '{flow.name}' is already being installed")
        await db_flows.start_install(session, flow.name)
        await session.commit()
        if all(m["installed"] for m in flow.models):
            await self._finish(flow, graph, "")
        else:
            job = asyncio.get_running_loop().create_task(self._download_then_finish(flow, graph))
            self._installing[flow.name] = job
        return flow.model_dump()

    async def _download_then_finish(self, flow: Flow, graph: dict[str, Any]) -> None:
        entries = [e for e in model_catalog.match_graph(graph, self.models)]
        reporter = _ProgressReporter(self.sessions, flow.name, asyncio.get_running_loop())
        error = ""
        try:
            token = await self.hf_token()
            await asyncio.to_thread(
                ensure_models, entries, self.models_dir, on_progress=reporter, hf_token=token or None
            )
        except VixError as exc:
            error = exc.message
        except Exception as exc:  # a download thread must never take the server down
            log.exception("flow install failed", extra={"action": "flow_install_failed", "flow": flow.name})
            error = f"{type(exc).__name__}: {exc}"
        await self._finish(flow, graph, error)

    async def _finish(self, flow: Flow, graph: dict[str, Any], error: str) -> None:
        async with self.sessions() as session:
            if not error:
                flow.models = [
                    _model_info(e, self.models_dir) for e in model_catalog.match_graph(graph, self.models)
                ]
                await db_flows.put_installed(session, flow.name, graph, flow.model_dump())
            await db_flows.finish_install(session, flow.name, error)
            await session.commit()
        self._bump()
        log.info(
            "flow installed" if not error else "flow install failed",
            extra={"flow": flow.name, "error": error},
        )

    async def delete(self, session: AsyncSession, name: str) -> None:
        if not await db_flows.remove(session, name):
            raise NotFound(f"flow '{name}' is not installed")
        await session.commit()
        self._bump()

    def _bump(self) -> None:
        self._changed()

    async def progress(self, session: AsyncSession) -> list[dict[str, Any]]:
        return [
            {
                "name": row.name,
                "progress": round(row.progress, 1),
                "error": row.error,
                "started_at": row.started_at.isoformat(),
                "updated_at": row.updated_at.isoformat(),
                "finished_at": row.finished_at.isoformat() if row.finished_at else None,
            }
            for row in await db_flows.installs(session)
        ]

    async def aclose(self) -> None:
        for job in self._installing.values():
            job.cancel()
        await asyncio.gather(*self._installing.values(), return_exceptions=True)


def _model_info(entry: Any, models_dir: Path) -> dict[str, Any]:
    return {
        "name": entry.name,
        "filename": entry.filename,
        "folder": entry.folder,
        "url": entry.url,
        "homepage": entry.homepage,
        "hash": entry.hash,
        "file_size": entry.file_size,
        "installed": entry.target(models_dir).is_file(),
    }


class _ProgressReporter:
    """Called from the download thread; writes progress to the database at most twice a second."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], name: str, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.sessions = sessions
        self.name = name
        self.loop = loop
        self.totals: dict[str, tuple[int, int]] = {}
        self.last = 0.0

    def __call__(self, filename: str, done: int, total: int) -> None:
        self.totals[filename] = (done, total)
        now = time.monotonic()
        if now - self.last < 0.5 and done < total:
            return
        self.last = now
        got = sum(d for d, _t in self.totals.values())
        want = sum(t for _d, t in self.totals.values()) or 1
        asyncio.run_coroutine_threadsafe(self._save(min(99.0, 100.0 * got / want)), self.loop)

    async def _save(self, progress: float) -> None:
        async with self.sessions() as session:
            await db_flows.set_install_progress(session, self.name, progress)
            await session.commit()
