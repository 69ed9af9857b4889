"""Webhooks reach a real HTTP receiver; the final call is retried; a dead target never slows a task."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.support import Server, free_port, png_bytes, wait_for

IMAGE = {"input_image": ("a.png", png_bytes(), "image/png")}


class Receiver:
    """A webhook target that answers 503 to the first ``failures`` final calls (progress 100 or error)."""

    def __init__(self, failures: int = 0) -> None:
        self.calls: list[tuple[str, dict[str, str], dict[str, Any]]] = []
        self.accepted: list[bool] = []
        self.failures = failures
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                final = body["progress"] == 100.0 or bool(body["error"])
                failing = final and receiver.failures > 0
                receiver.failures -= int(failing)
                receiver.calls.append((self.path, dict(self.headers), body))
                receiver.accepted.append(not failing)
                self.send_response(503 if failing else 200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def final_calls(self) -> list[dict[str, Any]]:
        return [body for _path, _headers, body in self.calls if body["progress"] == 100.0 or body["error"]]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    target = Receiver(failures=2)
    yield target
    target.server.shutdown()


def test_webhook_progress_and_retried_final_call(vix_server: Server, receiver: Receiver) -> None:
    with vix_server.client() as http:
        task_id = http.put(
            "/vapi/tasks/create/invert_image",
            data={"webhook_url": receiver.url, "webhook_headers": json.dumps({"X-Token": "s3cret"})},
            files=IMAGE,
        ).json()["tasks_ids"][0]
        wait_for(task_id, http)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not any(b["progress"] == 100.0 for b in _delivered(receiver)):
        time.sleep(0.1)
    delivered = _delivered(receiver)
    assert delivered and delivered[-1] == {
        "task_id": task_id,
        "progress": 100.0,
        "execution_time": delivered[-1]["execution_time"],
        "error": "",
    }
    assert all(path == "/hooks/task-progress" for path, _h, _b in receiver.calls)
    assert all(headers.get("X-Token") == "s3cret" for _p, headers, _b in receiver.calls)
    finals = receiver.final_calls()
    assert len(finals) == 3, "two 503 answers, then the retry got through"
    assert sum(1 for body in delivered if body["progress"] == 100.0) == 1


def _delivered(receiver: Receiver) -> list[dict[str, Any]]:
    return [body for (_p, _h, body), ok in zip(receiver.calls, receiver.accepted, strict=False) if ok]


def test_dead_webhook_target_does_not_hold_up_the_task(vix_server: Server) -> None:
    dead = f"http://127.0.0.1:{free_port()}/gone"
    with vix_server.client() as http:
        plain = http.put("/vapi/tasks/create/invert_image", files=IMAGE).json()["tasks_ids"][0]
        wait_for(plain, http)
        hooked = http.put("/vapi/tasks/create/invert_image", data={"webhook_url": dead}, files=IMAGE).json()[
            "tasks_ids"
        ][0]
        task = wait_for(hooked, http, timeout=20)
        assert task["status"] == "completed" and task["error"] == ""
        follow = http.put("/vapi/tasks/create/invert_image", files=IMAGE).json()["tasks_ids"][0]
        assert wait_for(follow, http, timeout=20)["status"] == "completed"
