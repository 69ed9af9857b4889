"""A task that no online worker can take says why (``warning``) instead of sitting at 0 % in silence:
in its details, in the listings and in the CLI; real server, real worker processes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.acceptance.test_cli_client import vix
from tests.support import Server, Worker, png_bytes, record_flow, wait_for


def _create(http: httpx.Client, flow: str = "invert_image") -> int:
    created = http.put(
        f"/vapi/tasks/create/{flow}", files={"input_image": ("p.png", png_bytes(), "image/png")}
    )
    assert created.status_code == 200, created.text
    return int(created.json()["tasks_ids"][0])


def _warning_until(http: httpx.Client, task_id: int, text: str, timeout: float = 60) -> dict[str, Any]:
    """The task once its warning contains ``text`` (a worker checks in at its next poll)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = http.get(f"/vapi/tasks/progress/{task_id}").json()
        if text in task["warning"]:
            return task  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise AssertionError(f"task {task_id}: no warning with {text!r} after {timeout} s: {task}")


def test_no_worker_online_is_said_in_details_listings_and_cli(idle_server: Server, tmp_path: Path) -> None:
    with idle_server.client() as http:
        task_id = _create(http)
        task = http.get(f"/vapi/tasks/progress/{task_id}").json()
        assert (task["status"], task["progress"], task["warning"]) == ("queued", 0.0, "no worker is online")
        listed = http.get("/vapi/tasks/progress", params={"name": "invert_image"}).json()
        assert listed[str(task_id)]["warning"] == "no worker is online"
        summary = http.get("/vapi/tasks/progress-summary").json()
        assert summary[str(task_id)]["warning"] == "no worker is online"

    shown = vix("task", "show", str(task_id), url=idle_server.url, cwd=tmp_path)
    assert shown.returncode == 0 and '"warning": "no worker is online"' in shown.stdout

    photo = tmp_path / "photo.png"
    photo.write_bytes(png_bytes())
    waited = vix("task", "run", "invert_image", "--file", f"input_image={photo}", "--timeout", "2",
                 url=idle_server.url, cwd=tmp_path)  # fmt: skip
    assert waited.returncode == 3
    assert "is waiting: no worker is online" in waited.stderr


@pytest.fixture
def models_elsewhere(tmp_path: Path, sqlite_url: str) -> Iterator[Server]:
    """A server (no local worker) with remove_background_birefnet installed from tiny models that
    sit in the server's MODELS_DIR only: a worker with its own, empty MODELS_DIR lacks them."""
    pytest.importorskip("torch", reason="the BiRefNet flow needs the worker extra (torch)")
    from visionatrix.testing.tiny_models import write_tiny_models

    models = tmp_path / "server-models"
    write_tiny_models(models, flows=["remove_background_birefnet"])
    server = Server(tmp_path, sqlite_url, local_workers=0, MODELS_DIR=str(models), HF_HUB_OFFLINE="1")
    server.start()
    try:
        with server.client() as http:
            answer = http.post("/vapi/flows/flow", params={"name": "remove_background_birefnet"})
            assert answer.status_code == 200, answer.text
            for _ in range(600):
                if any(
                    f["name"] == "remove_background_birefnet"
                    for f in http.get("/vapi/flows/installed").json()
                ):
                    break
                time.sleep(0.1)
        yield server
    finally:
        server.stop()


def test_a_worker_without_the_model_is_named_with_the_missing_file(
    models_elsewhere: Server, tmp_path: Path
) -> None:
    bare = Worker(models_elsewhere, tmp_path, "bare", MODELS_DIR=str(tmp_path / "empty-models"))
    bare.start()
    equipped = Worker(models_elsewhere, tmp_path, "equipped", MODELS_DIR=str(tmp_path / "server-models"))
    try:
        with models_elsewhere.client() as http:
            task_id = _create(http, "remove_background_birefnet")
            task = _warning_until(http, task_id, "no worker can run flow")
            assert task["warning"] == (
                "no worker can run flow 'remove_background_birefnet': missing model 'General.safetensors'"
            )
            assert task["status"] == "queued"
            # a worker that has the model takes it: the task runs, and says nothing more
            equipped.start()
            done = wait_for(task_id, http, timeout=300)
            assert (done["error"], done["progress"], done["warning"]) == ("", 100.0, "")
    finally:
        equipped.stop()
        bare.stop()


def test_a_flow_that_failed_for_a_missing_file_is_reported_until_the_file_is_there(
    idle_server: Server, tmp_path: Path
) -> None:
    idle_server.install(record_flow(tmp_path / "runs.log", model="needed.bin"))
    worker = Worker(idle_server, tmp_path, "w")
    worker.start()
    try:
        with idle_server.client() as http:
            created = http.put("/vapi/tasks/create/record", data={"text": "x"})
            task_id = int(created.json()["tasks_ids"][0])
            task = _warning_until(http, task_id, "no worker can run flow")
            assert task["warning"] == "no worker can run flow 'record': missing model 'needed.bin'"
            (tmp_path / "models" / "test_models").mkdir(parents=True, exist_ok=True)
            (tmp_path / "models" / "test_models" / "needed.bin").write_bytes(b"model")
            done = wait_for(task_id, http, timeout=120)
            assert (done["error"], done["warning"]) == ("", "")
    finally:
        worker.stop()
