"""SERVER mode: Basic auth everywhere, hashed passwords, users see only their own tasks, admin routes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from tests.support import FLOWS, Server, Worker, base_env, create_user, free_port, png_bytes, wait_for

IMAGE = {"input_image": ("a.png", png_bytes(), "image/png")}


def test_server_mode_auth_ownership_and_admin_routes(tmp_path: Path, db_url: str) -> None:
    server = Server(tmp_path, db_url, mode="SERVER", VIX_ADMIN_PASSWORD="top-secret")
    server.start()
    try:
        anonymous = httpx.get(f"{server.url}/vapi/tasks/progress")
        assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Basic"
        wrong = httpx.get(f"{server.url}/vapi/other/whoami", auth=("admin", "admin"))
        assert wrong.status_code == 401
        with server.client(("admin", "top-secret")) as admin:
            assert admin.get("/vapi/other/whoami").json()["is_admin"] is True
        server.install(FLOWS / "invert_image.json", auth=("admin", "top-secret"))

        create_user(server, "alice", "alice-pw")
        create_user(server, "bob", "bob-pw")
        with server.client(("alice", "alice-pw")) as alice, server.client(("bob", "bob-pw")) as bob:
            assert alice.get("/vapi/other/whoami").json() == {
                "user_id": "alice",
                "full_name": "alice",
                "email": "",
                "is_admin": False,
            }
            task_id = alice.put("/vapi/tasks/create/invert_image", files=IMAGE).json()["tasks_ids"][0]
            assert bob.get(f"/vapi/tasks/progress/{task_id}").status_code == 404
            assert bob.delete("/vapi/tasks/task", params={"task_id": task_id}).status_code == 404
            assert bob.get("/vapi/tasks/progress").json() == {}
            assert list(alice.get("/vapi/tasks/progress").json()) == [str(task_id)]
            for call in (
                lambda: bob.get("/vapi/flows/not-installed"),
                lambda: bob.post("/vapi/flows/flow", params={"name": "sdxl_lighting"}),
                lambda: bob.delete("/vapi/flows/flow", params={"name": "invert_image"}),
                lambda: bob.post("/vapi/settings/global", json={"key": "k", "value": "v"}),
            ):
                refused = call()
                assert refused.status_code == 403 and "admin" in refused.json()["detail"]
            assert bob.get("/vapi/flows/installed").status_code == 200

            # a worker with alice's credentials runs alice's task; bob's worker never sees it
            bobs = Worker(server, tmp_path, "bob", auth="bob:bob-pw")
            bobs.start()
            alices = Worker(server, tmp_path, "alice", auth="alice:alice-pw")
            alices.start()
            try:
                assert wait_for(task_id, alice)["status"] == "completed"
            finally:
                bobs.stop()
                alices.stop()
            assert "alice" in alice.get(f"/vapi/tasks/progress/{task_id}").json()["worker_id"]
    finally:
        server.stop()
    hashed = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; print(open(sys.argv[1], 'rb').read().count(b'alice-pw'))",
            str(tmp_path / "vix.db"),
        ],
        capture_output=True,
        text=True,
    )
    assert hashed.stdout.strip() in ("0", ""), "passwords are stored hashed, never in clear"


def test_default_admin_password_is_refused_off_loopback(tmp_path: Path, sqlite_url: str) -> None:
    env = base_env(tmp_path, sqlite_url, VIX_MODE="SERVER", VIX_HOST="0.0.0.0", VIX_PORT=str(free_port()))
    done = subprocess.run(
        [sys.executable, "-m", "visionatrix", "run"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = done.stdout + done.stderr
    # a refusal while the app starts is one clear line and exit 1, not uvicorn's traceback
    assert done.returncode == 1, output
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "VIX_ADMIN_PASSWORD" in errors[0], output
    assert "Traceback" not in output and "startup failed" not in output
    # checked before uvicorn starts: nothing of it is printed, no port is ever bound
    assert "Started server process" not in output and "Uvicorn running" not in output, output


def test_development_admin_on_loopback_warns(tmp_path: Path, sqlite_url: str) -> None:
    server = Server(tmp_path, sqlite_url, mode="SERVER")
    server.start()
    try:
        with server.client(("admin", "admin")) as admin:
            assert admin.get("/vapi/other/whoami").json()["user_id"] == "admin"
        assert "DEFAULT password" in server.log()
    finally:
        server.stop()


def test_default_mode_needs_no_credentials(vix_server: Server) -> None:
    answer = httpx.get(f"{vix_server.url}/vapi/other/whoami")
    assert answer.status_code == 200 and answer.json()["user_id"] == "admin"
    settings = httpx.post(f"{vix_server.url}/vapi/settings/global", json={"key": "k", "value": "v1"})
    assert settings.status_code == 204
    assert httpx.get(f"{vix_server.url}/vapi/settings/get", params={"key": "k"}).json() == "v1"
    httpx.post(f"{vix_server.url}/vapi/settings/user", json={"key": "k", "value": "mine"}).raise_for_status()
    assert httpx.get(f"{vix_server.url}/vapi/settings/get", params={"key": "k"}).json() == "mine"
