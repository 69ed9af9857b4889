"""SERVER mode access (issue 7, points 4, 6 and 8): the API description needs credentials, worker
ids are bound to their user, passwords of any length, failed logins rate-limited. A real server
over SQLite and PostgreSQL; users are created in its database as `create-user` does."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator

import bcrypt
import httpx
import pytest

from tests.support import FLOWS, Server, add_user, png_bytes

ADMIN = ("admin", "admin-secret")
BOB = ("bob", "bob-secret")
LONG = "correct horse battery staple " * 4  # 116 bytes: past bcrypt's 72


@pytest.fixture(scope="module")
def server(module_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("access")
    vix = Server(
        folder, module_db_url, mode="SERVER", VIX_ADMIN_PASSWORD=ADMIN[1], VIX_LOGIN_MAX_FAILURES="4"
    )
    vix.start()
    try:
        for name, password in (BOB, ("alice", "alice-secret"), ("carol", "carol-secret")):
            add_user(module_db_url, name, password)
        vix.install(FLOWS / "invert_image.json")
        yield vix
    finally:
        vix.stop()


def _worker(worker_id: str, hostname: str) -> dict[str, object]:
    return {
        "worker_details": {"worker_id": worker_id, "system": {"hostname": hostname}},
        "tasks_names": ["invert_image"],
    }


def _workers(server: Server) -> dict[str, dict[str, object]]:
    with server.client(ADMIN) as admin:
        return {w["worker_id"]: w for w in admin.get("/vapi/workers/info").json()}


def test_the_api_description_needs_credentials(server: Server) -> None:
    for path in ("/openapi.json", "/docs", "/redoc"):
        anonymous = httpx.get(server.url + path)
        assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Basic", path
        with server.client(BOB) as bob:
            assert bob.get(path).status_code == 200, path
    with server.client(BOB) as bob:
        assert "/vapi/tasks/create/{flow_name}" in bob.get("/openapi.json").json()["paths"]


def test_a_worker_id_is_bound_to_its_user(server: Server) -> None:
    with server.client(ADMIN) as admin, server.client(BOB) as bob:
        assert admin.post("/vapi/tasks/next", json=_worker("gpu-1", "admin-host")).status_code == 204
        # bob names admin's worker: he gets a worker of his own, admin's record is untouched
        assert bob.post("/vapi/tasks/next", json=_worker("admin:gpu-1", "evil")).status_code == 204
        seen = _workers(server)
        assert seen["admin:gpu-1"]["system"] == {"hostname": "admin-host"}
        assert seen["admin:gpu-1"]["user_id"] == "admin"
        assert seen["bob:admin:gpu-1"]["user_id"] == "bob"
        # bob's "admin:gpu-1" is his own worker of that name: setting it cannot starve admin's
        starve = {"worker_id": "admin:gpu-1", "tasks_to_give": ["no_such_flow"]}
        assert bob.post("/vapi/workers/settings", json=starve).status_code == 204
        assert _workers(server)["admin:gpu-1"]["tasks_to_give"] == []
        assert _workers(server)["bob:admin:gpu-1"]["tasks_to_give"] == ["no_such_flow"]
        alien = {"worker_id": "carol:gpu-9", "tasks_to_give": []}
        assert bob.post("/vapi/workers/settings", json=alien).status_code == 404
        assert [w["worker_id"] for w in bob.get("/vapi/workers/info").json()] == ["bob:admin:gpu-1"]

        # admin's worker claims bob's task; bob cannot report for it under admin's worker id
        task_id = bob.put(
            "/vapi/tasks/create/invert_image", files={"input_image": ("a.png", png_bytes())}
        ).json()["tasks_ids"][0]
        claimed = admin.post("/vapi/tasks/next", json=_worker("gpu-1", "admin-host")).json()
        assert claimed["task_id"] == task_id and claimed["worker_id"] == "admin:gpu-1"
        spoofed = {**_worker("admin:gpu-1", "evil"), "task_id": task_id, "progress": 50.0, "error": "spoofed"}
        assert bob.put("/vapi/tasks/progress", json=spoofed).status_code == 404
        state = bob.get(f"/vapi/tasks/progress/{task_id}").json()
        assert state["status"] == "running" and state["error"] == ""
        admin.delete("/vapi/tasks/lock", params={"task_id": task_id}).raise_for_status()
        bob.delete("/vapi/tasks/task", params={"task_id": task_id}).raise_for_status()


def test_passwords_of_any_length(server: Server, module_db_url: str) -> None:
    add_user(module_db_url, "dave", LONG)
    assert httpx.get(f"{server.url}/vapi/other/whoami", auth=("dave", LONG)).status_code == 200
    assert httpx.get(f"{server.url}/vapi/other/whoami", auth=("dave", LONG[:72])).status_code == 401
    assert httpx.get(f"{server.url}/vapi/other/whoami", auth=("alice", "p" * 5000)).status_code == 401
    # a hash made before (plain bcrypt) still logs its user in
    _insert_user(module_db_url, "legacy", bcrypt.hashpw(b"old-secret", bcrypt.gensalt(4)).decode())
    assert httpx.get(f"{server.url}/vapi/other/whoami", auth=("legacy", "old-secret")).status_code == 200

    env = {k: v for k, v in server.env.items() if k != "VIX_MODE"}
    command = [sys.executable, "-m", "visionatrix", "create-user", "--name", "eve", "--password", "p" * 2000]
    done = subprocess.run(command, env=env, cwd=server.cwd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "at most 1024 bytes" in done.stderr and "Traceback" not in done.stderr


def _insert_user(db_url: str, name: str, password_hash: str) -> None:
    from visionatrix.config import _async_url
    from visionatrix.db import users as db_users
    from visionatrix.db.engine import create_engine, session_factory
    from visionatrix.db.tables import User

    async def go() -> None:
        engine = create_engine(_async_url(db_url))
        try:
            async with session_factory(engine)() as session:
                await db_users.add(session, User(user_id=name, password_hash=password_hash, full_name=name))
                await session.commit()
        finally:
            await engine.dispose()

    asyncio.run(go())


def test_repeated_failed_logins_are_rate_limited(server: Server) -> None:
    whoami = f"{server.url}/vapi/other/whoami"
    for _ in range(4):
        assert httpx.get(whoami, auth=("carol", "guess")).status_code == 401
    limited = httpx.get(whoami, auth=("carol", "guess"))
    assert limited.status_code == 429, limited.text
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert httpx.get(whoami, auth=("carol", "carol-secret")).status_code == 429, (
        "the limit holds for everyone"
    )
    assert httpx.get(whoami, auth=BOB).status_code == 200, "other users of this client log in"
