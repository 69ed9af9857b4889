"""Real processes for tests: the server (uvicorn via the CLI) and worker processes, on free ports."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
FLOWS = Path(__file__).resolve().parent / "flows"
NODES = Path(__file__).resolve().parent / "nodes"
# ../shared beside the checkout (as in CI), or where VIX_SHARED points
SHARED = Path(os.environ.get("VIX_SHARED", ROOT.parent / "shared"))
FIXTURES = SHARED / "fixtures"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def base_env(workdir: Path, db_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIX_", "WORKER_AUTH", "DATABASE_URI"))}
    env.update(
        DATABASE_URI=db_url,
        BASE_DATA_DIR=str(workdir / "data"),
        MODELS_DIR=str(workdir / "models"),
        VIX_NODE_MODULES="testing_nodes",
        PYTHONPATH=os.pathsep.join([str(NODES), str(ROOT), env.get("PYTHONPATH", "")]),
    )
    env.update(extra)
    return env


class Process:
    def __init__(self, args: list[str], env: dict[str, str], cwd: Path, log_name: str) -> None:
        self.args = args
        self.env = env
        self.cwd = cwd
        self.log_path = cwd / log_name
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "visionatrix", "-v", *self.args],
            cwd=self.cwd,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
        if self.proc is None:
            return
        if not self.alive():
            # the leader is gone; anything it left in its group (a local worker) goes too
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            return
        # the whole process group: DEFAULT mode's local worker goes too
        os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class Server(Process):
    def __init__(
        self, workdir: Path, db_url: str, *, mode: str = "DEFAULT", local_workers: int = 1, **env: str
    ) -> None:
        self.port = free_port()
        self.mode = mode
        self.auth: tuple[str, str] | None = (
            ("admin", env.get("VIX_ADMIN_PASSWORD", "admin")) if mode == "SERVER" else None
        )
        environment = base_env(
            workdir,
            db_url,
            VIX_MODE=mode,
            VIX_PORT=str(self.port),
            VIX_HOST="127.0.0.1",
            VIX_LOCAL_WORKERS=str(local_workers),
            **env,
        )
        super().__init__(["run"], environment, workdir, "server.log")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> None:
        super().start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"server exited:\n{self.log()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/vapi/other/whoami", timeout=1).status_code in (200, 401):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not start:\n{self.log()[-3000:]}")

    def client(self, auth: tuple[str, str] | None = None, timeout: float = 30) -> httpx.Client:
        return httpx.Client(base_url=self.url, auth=auth or self.auth, timeout=timeout)

    def install(self, flow: Path | dict[str, Any], auth: tuple[str, str] | None = None) -> dict[str, Any]:
        raw = flow.read_bytes() if isinstance(flow, Path) else json.dumps(flow).encode()
        with self.client(auth) as http:
            response = http.put(
                "/vapi/flows/flow", files={"flow_file": ("flow.json", raw, "application/json")}
            )
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]


class Worker(Process):
    def __init__(self, server: Server, workdir: Path, name: str, auth: str = "", **env: str) -> None:
        environment = dict(server.env)
        environment.update(VIX_MODE="WORKER", VIX_SERVER=server.url, WORKER_AUTH=auth, **env)
        environment.pop("VIX_PORT", None)
        super().__init__(["run"], environment, workdir, f"worker-{name}.log")


def create_user(server: Server, name: str, password: str, admin: bool = False) -> None:
    """A user made with the real CLI against the server's database."""
    env = {k: v for k, v in server.env.items() if k != "VIX_MODE"}
    command = [sys.executable, "-m", "visionatrix", "create-user", "--name", name, "--password", password]
    done = subprocess.run(
        command + (["--admin"] if admin else []), env=env, cwd=server.cwd, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


def wait_for(task_id: int, http: httpx.Client, timeout: float = 60, until: str = "done") -> dict[str, Any]:
    """Poll like an integration-guide client until the task is done (or failed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = http.get(f"/vapi/tasks/progress/{task_id}").json()
        if until == "done" and (task["progress"] == 100.0 or task["error"]):
            return task  # type: ignore[no-any-return]
        if until == "running" and task["status"] == "running":
            return task  # type: ignore[no-any-return]
        time.sleep(0.05)
    raise AssertionError(f"task {task_id} not {until} after {timeout} s: {task}")


def record_flow(
    log_path: Path, seconds: float = 0.0, steps: int = 10, name: str = "record", model: str = ""
) -> dict[str, Any]:
    """A flow: prompt → TestRecord (appends to log_path, works ``seconds``) → SaveImage (node 9).

    ``model``: a file TestRecord needs under ``MODELS_DIR/test_models`` (not in any catalog, so
    the flow lists no models and only running it finds the file missing)."""
    record: dict[str, Any] = {"text": ["1", 0], "log_path": str(log_path), "seconds": seconds, "steps": steps}
    if model:
        record["model"] = model
    return {
        "1": {
            "class_type": "VixUiPrompt",
            "inputs": {
                "text": "",
                "display_name": "Text",
                "optional": False,
                "advanced": False,
                "order": 1,
                "custom_id": "text",
                "hidden": False,
                "translatable": False,
            },
            "_meta": {"title": "VixUI-Prompt"},
        },
        "2": {
            "class_type": "TestRecord",
            "inputs": record,
            "_meta": {"title": "Record"},
        },
        "9": {
            "class_type": "SaveImage",
            "inputs": {"images": ["2", 0], "filename_prefix": "x"},
            "_meta": {"title": "Save"},
        },
        "10": {
            "class_type": "VixUiWorkflowMetadata",
            "inputs": {
                "name": name,
                "display_name": name,
                "description": "",
                "author": "tests",
                "homepage": "",
                "documentation": "",
                "license": "",
                "tags": "[]",
                "version": "1.0.0",
                "requires": "[]",
                "is_seed_supported": False,
                "is_count_supported": True,
                "is_translations_supported": False,
                "is_macos_supported": True,
                "required_memory_gb": 0,
            },
            "_meta": {"title": "VixUI-WorkflowMetadata"},
        },
    }


def png_bytes(color: tuple[int, int, int] = (10, 200, 30), size: tuple[int, int] = (32, 24)) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return buffer.getvalue()
