"""Webhooks cannot be aimed at the server's own network (issue 7, point 2). A real HTTP listener on
127.0.0.1: in SERVER mode it receives nothing (refused at creation, with a 400 naming the
problem), with VIX_WEBHOOK_ALLOWLIST=127.0.0.1 it receives the task's calls, and a task created
while it was allowed is checked again when its call is due: a server without the allowlist sends
nothing and logs why. The tests play the worker over the worker API."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.acceptance.test_webhooks import Receiver
from tests.support import FLOWS, Server, png_bytes

ADMIN = ("admin", "hook-admin-pw")
IMAGE = {"input_image": ("a.png", png_bytes(), "image/png")}
WORKER = {
    "worker_details": {"worker_id": "hooks", "system": {"hostname": "t"}},
    "tasks_names": ["invert_image"],
}


@pytest.fixture
def listener() -> Iterator[Receiver]:
    target = Receiver()
    yield target
    target.server.shutdown()


def _serve(folder: Path, db_url: str, **env: str) -> Server:
    server = Server(folder, db_url, mode="SERVER", VIX_ADMIN_PASSWORD=ADMIN[1], **env)
    server.start()
    return server


def _create(http: httpx.Client, url: str, headers: dict[str, str] | None = None) -> httpx.Response:
    data = {"webhook_url": url, "webhook_headers": json.dumps(headers or {"X-Token": "t"})}
    return http.put("/vapi/tasks/create/invert_image", data=data, files=IMAGE)


def _run_as_worker(http: httpx.Client, task_id: int) -> None:
    claimed = http.post("/vapi/tasks/next", json=WORKER)
    assert claimed.status_code == 200 and claimed.json()["task_id"] == task_id, claimed.text
    report = {**WORKER, "task_id": task_id, "progress": 50.0}
    http.put("/vapi/tasks/progress", json=report).raise_for_status()
    files = [("files", (f"{task_id}_9_0.png", png_bytes(), "image/png"))]
    http.put("/vapi/tasks/results", params={"task_id": task_id}, files=files).raise_for_status()


def _refusals(http: httpx.Client, port: int) -> None:
    for url, words in (
        (f"http://127.0.0.1:{port}/hooks", "loopback"),
        (f"http://2130706433:{port}/hooks", "loopback"),
        (f"http://[::ffff:127.0.0.1]:{port}/hooks", "loopback"),
        (f"http://localhost:{port}/hooks", "loopback"),
        (f"http://0.0.0.0:{port}/hooks", "unspecified"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://10.0.0.1/hooks", "private"),
        ("gopher://8.8.8.8/", "http:// or https://"),
    ):
        refused = _create(http, url)
        assert refused.status_code == 400, (url, refused.text)
        assert words in refused.json()["detail"] and "webhook_url" in refused.json()["detail"], refused.text
    for headers, words in (
        ({"Host": "internal.example"}, "set by the server"),
        ({"Transfer-Encoding": "chunked"}, "set by the server"),
        ({"X-A": "1\r\nX-Injected: 2"}, "line breaks"),
    ):
        refused = _create(http, "https://8.8.8.8/hooks", headers)
        assert refused.status_code == 400 and words in refused.json()["detail"], (headers, refused.text)
    assert http.get("/vapi/tasks/progress").json() == {}, "nothing was created"


def test_webhooks_reach_only_allowed_addresses(tmp_path: Path, db_url: str, listener: Receiver) -> None:
    port = listener.server.server_address[1]
    closed = _serve(tmp_path, db_url)
    try:
        closed.install(FLOWS / "invert_image.json", auth=ADMIN)
        with closed.client(ADMIN) as http:
            _refusals(http, port)
    finally:
        closed.stop()

    allowed = _serve(tmp_path, db_url, VIX_WEBHOOK_ALLOWLIST="127.0.0.1")
    try:
        with allowed.client(ADMIN) as http:
            first = _create(http, listener.url)
            assert first.status_code == 200, first.text
            first_id = first.json()["tasks_ids"][0]
            _run_as_worker(http, first_id)
            _wait(lambda: any(body["progress"] == 100.0 for body in _bodies(listener, first_id)))
            later_id = _create(http, listener.url).json()["tasks_ids"][0]
    finally:
        allowed.stop()
    assert all(path == "/hooks/task-progress" for path, _h, _b in listener.calls)
    assert all(headers["Host"] == f"127.0.0.1:{port}" for _p, headers, _b in listener.calls)

    # the allowlist is gone when the later task's calls fall due: checked again, nothing sent
    closed = _serve(tmp_path, db_url)
    try:
        with closed.client(ADMIN) as http:
            _run_as_worker(http, later_id)
        _wait(lambda: f"for task {later_id} failed" in closed.log())
        assert "a loopback address" in closed.log()
    finally:
        closed.stop()
    assert _bodies(listener, later_id) == []


def _bodies(listener: Receiver, task_id: int) -> list[dict[str, object]]:
    return [body for _p, _h, body in listener.calls if body["task_id"] == task_id]


def _wait(done: object, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError("timed out")
