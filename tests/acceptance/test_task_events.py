"""GET /vapi/tasks/events against real servers: every change pushed in order, filters, owners only,
resume after a dropped connection, and changes made by another server process on the same database."""

from __future__ import annotations

import asyncio
import json
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import FLOWS, Server, create_user, png_bytes, record_flow
from visionatrix.client import AsyncClient, Client, NotFound
from visionatrix.client._sse import EventParser, ServerEvent

IMAGE = {"input_image": ("a.png", png_bytes(), "image/png")}
WORKER = {"worker_details": {"worker_id": "sse-worker", "system": {"hostname": "t"}}}


class Stream:
    """A live ``/vapi/tasks/events`` connection read by a thread, its events in a queue."""

    def __init__(
        self, server: Server, auth: tuple[str, str] | None = None, resume: str | None = None, **params: Any
    ) -> None:
        headers = {"Last-Event-ID": resume} if resume is not None else {}
        self.client = httpx.Client(base_url=server.url, auth=auth or server.auth, timeout=30)
        self.events: queue.Queue[tuple[str | None, ServerEvent]] = queue.Queue()
        self.parser = EventParser()
        self._response = self.client.send(
            self.client.build_request("GET", "/vapi/tasks/events", params=params, headers=headers),
            stream=True,
        )
        self.status = self._response.status_code
        self._thread = threading.Thread(target=self._read, daemon=True)
        if self.status == 200:
            self._thread.start()

    def _read(self) -> None:
        try:
            for line in self._response.iter_lines():
                event = self.parser.feed(line)
                if event is not None:
                    self.events.put((self.parser.last_id, event))
        except httpx.HTTPError:
            pass  # closed by the test

    def next(self, timeout: float = 10) -> tuple[str, dict[str, Any]]:
        _id, event = self.events.get(timeout=timeout)
        return event.event, json.loads(event.data)

    def until(self, done: Any, timeout: float = 20) -> list[tuple[str, dict[str, Any]]]:
        """Events until ``done(kind, data)`` is true for one (included)."""
        seen = []
        deadline = time.monotonic() + timeout
        while True:
            kind, data = self.next(max(0.1, deadline - time.monotonic()))
            seen.append((kind, data))
            if done(kind, data):
                return seen

    def quiet(self, seconds: float = 2.5) -> list[tuple[str, dict[str, Any]]]:
        """Every event that arrives within ``seconds``."""
        time.sleep(seconds)
        found = []
        while not self.events.empty():
            _id, event = self.events.get()
            found.append((event.event, json.loads(event.data)))
        return found

    def close(self) -> None:
        # the reader thread ends when the server drops the connection (it notices at once)
        self._response.close()
        self.client.close()


@pytest.fixture
def streams() -> Iterator[list[Stream]]:
    opened: list[Stream] = []
    yield opened
    for stream in opened:
        stream.close()


def _open(streams: list[Stream], server: Server, **params: Any) -> Stream:
    stream = Stream(server, **params)
    streams.append(stream)
    assert stream.status == 200
    return stream


def _create(http: httpx.Client, flow: str = "invert_image") -> int:
    answer = http.put(f"/vapi/tasks/create/{flow}", files=IMAGE)
    assert answer.status_code == 200, answer.text
    return int(answer.json()["tasks_ids"][0])


def _set_priority(http: httpx.Client, task_id: int, priority: int) -> int:
    return http.put(
        "/vapi/tasks/update", params={"task_id": task_id}, json={"priority": priority}
    ).status_code


def _of(task_id: int):  # type: ignore[no-untyped-def]
    return lambda kind, data: data.get("task_id") == task_id


def test_each_change_is_pushed_in_order_as_the_progress_route_answers(
    idle_server: Server, streams: list[Stream]
) -> None:
    stream = _open(streams, idle_server)
    with idle_server.client() as http:
        task_id = _create(http)
        seen = [stream.until(_of(task_id))[-1]]
        claimed = http.post("/vapi/tasks/next", json={**WORKER, "tasks_names": ["invert_image"]})
        assert claimed.json()["task_id"] == task_id
        seen.append(stream.until(_of(task_id))[-1])
        for progress in (30.0, 60.0):
            report = {**WORKER, "task_id": task_id, "progress": progress, "execution_time": 0.5}
            assert http.put("/vapi/tasks/progress", json=report).status_code == 204
            seen.append(stream.until(_of(task_id))[-1])
        files = [("files", (f"{task_id}_9_0.png", png_bytes(), "image/png"))]
        assert http.put("/vapi/tasks/results", params={"task_id": task_id}, files=files).status_code == 204
        seen.append(stream.until(_of(task_id))[-1])
        assert [kind for kind, _ in seen] == ["task"] * 5
        assert [(t["status"], t["progress"]) for _, t in seen] == [
            ("queued", 0.0),
            ("running", 0.1),
            ("running", 30.0),
            ("running", 60.0),
            ("completed", 100.0),
        ]
        assert seen[-1][1] == http.get(f"/vapi/tasks/progress/{task_id}").json()
        assert http.delete("/vapi/tasks/task", params={"task_id": task_id}).status_code == 204
        assert stream.until(_of(task_id))[-1] == ("deleted", {"task_id": task_id, "name": "invert_image"})


def test_a_real_worker_s_progress_arrives_in_order(vix_server: Server, streams: list[Stream]) -> None:
    vix_server.install(record_flow(vix_server.cwd / "record.log", seconds=1.5, steps=6))
    stream = _open(streams, vix_server, name="record")
    with vix_server.client() as http:
        answer = http.put("/vapi/tasks/create/record", data={"text": "hello"})
        task_id = answer.json()["tasks_ids"][0]
    seen = [data for _kind, data in stream.until(lambda k, d: d.get("status") == "completed", timeout=60)]
    assert {t["task_id"] for t in seen} == {task_id}
    progress = [t["progress"] for t in seen]
    assert progress == sorted(progress) and progress[-1] == 100.0
    assert len({p for p in progress if 0.1 < p < 100.0}) >= 2, f"progress was pushed as it moved: {progress}"
    order = ["queued", "running", "completed"]
    statuses = [t["status"] for t in seen]
    assert statuses == sorted(statuses, key=order.index)


def test_filters_hold(idle_server: Server, streams: list[Stream]) -> None:
    idle_server.install(FLOWS / "scale_image.json")
    with idle_server.client() as http:
        first = _create(http)
        by_flow = _open(streams, idle_server, name="scale_image")
        by_task = _open(streams, idle_server, task_id=first)
        assert by_task.next() == ("task", http.get(f"/vapi/tasks/progress/{first}").json())
        assert by_flow.quiet(0.5) == [], "no unfinished scale_image task yet"
        scaled = _create(http, "scale_image")
        _create(http)
        assert _set_priority(http, first, 7) == 204
        flow_events = by_flow.quiet()
        task_events = by_task.quiet()
    assert [(k, d["task_id"]) for k, d in flow_events] == [("task", scaled)]
    assert [(k, d["task_id"], d["priority"]) for k, d in task_events] == [("task", first, 7)]


def test_another_user_s_tasks_never_appear(tmp_path: Path, sqlite_url: str, streams: list[Stream]) -> None:
    server = Server(tmp_path, sqlite_url, mode="SERVER", VIX_ADMIN_PASSWORD="pw")
    server.start()
    try:
        server.install(FLOWS / "invert_image.json")
        create_user(server, "alice", "alice-pw")
        create_user(server, "bob", "bob-pw")
        assert httpx.get(f"{server.url}/vapi/tasks/events").status_code == 401
        alice_stream = Stream(server, ("alice", "alice-pw"))
        bob_stream = Stream(server, ("bob", "bob-pw"))
        streams += [alice_stream, bob_stream]
        with server.client(("alice", "alice-pw")) as alice, server.client(("bob", "bob-pw")) as bob:
            mine = _create(alice)
            assert alice_stream.until(_of(mine))[-1][1]["status"] == "queued"
            peek = Stream(server, ("bob", "bob-pw"), task_id=mine)
            assert peek.status == 404
            peek.close()
            theirs = _create(bob)
            assert alice.delete("/vapi/tasks/task", params={"task_id": mine}).status_code == 204
            admin_stream = Stream(server, task_id=mine)
            assert admin_stream.status == 404, "an admin sees only their own tasks here too"
            admin_stream.close()
            alice_seen = alice_stream.quiet()
            bob_seen = bob_stream.quiet(0.5)
        assert {d["task_id"] for _k, d in alice_seen} == {mine}
        assert [(k, d["task_id"]) for k, d in bob_seen] == [("task", theirs)]
    finally:
        server.stop()


def test_a_dropped_connection_resumes_with_last_event_id(idle_server: Server, streams: list[Stream]) -> None:
    stream = _open(streams, idle_server)
    with idle_server.client() as http:
        kept = _create(http)
        dropped = _create(http)
        stream.until(_of(dropped))
        time.sleep(0.3)
        last_id = stream.parser.last_id
        assert last_id is not None and int(last_id) > 0
        stream.close()
        # while nobody listens: a priority change, a new task, a deletion
        assert _set_priority(http, kept, 3) == 204
        added = _create(http)
        assert http.delete("/vapi/tasks/task", params={"task_id": dropped}).status_code == 204
        resumed = _open(streams, idle_server, resume=last_id)
        missed = resumed.until(lambda kind, data: data.get("task_id") == added)
        missed += resumed.quiet(1.5)
        by_query = _open(streams, idle_server, last_event_id=last_id)
        assert by_query.until(lambda kind, data: data.get("task_id") == added)
    latest = {data["task_id"]: (kind, data) for kind, data in missed}
    assert "reset" not in {kind for kind, _ in missed}
    assert latest[kept][1]["priority"] == 3
    assert latest[dropped] == ("deleted", {"task_id": dropped, "name": "invert_image"})
    assert latest[added][1]["status"] == "queued"


def test_bad_resume_ids_are_refused(idle_server: Server) -> None:
    with idle_server.client() as http:
        answer = http.get("/vapi/tasks/events", headers={"Last-Event-ID": "yesterday"})
        assert answer.status_code == 400 and "Last-Event-ID" in answer.json()["detail"]
        assert http.get("/vapi/tasks/events", params={"task_id": 999}).status_code == 404


def test_changes_made_by_another_server_process_arrive(
    tmp_path: Path, db_url: str, streams: list[Stream]
) -> None:
    first = Server(tmp_path / "one", db_url, local_workers=0, BASE_DATA_DIR=str(tmp_path / "data"))
    second = Server(tmp_path / "two", db_url, local_workers=0, BASE_DATA_DIR=str(tmp_path / "data"))
    for server in (first, second):
        server.cwd.mkdir()
        server.start()
    try:
        first.install(FLOWS / "invert_image.json")
        stream = _open(streams, first)
        with second.client() as http:
            task_id = _create(http)
            kind, data = stream.until(_of(task_id))[-1]
            assert http.delete("/vapi/tasks/task", params={"task_id": task_id}).status_code == 204
            assert stream.until(_of(task_id))[-1] == ("deleted", {"task_id": task_id, "name": "invert_image"})
        assert kind == "task" and data["status"] == "queued"
    finally:
        for server in (first, second):
            server.stop()


def test_the_sdk_waits_on_the_event_stream_not_by_polling(vix_server: Server) -> None:
    vix_server.install(record_flow(vix_server.cwd / "record.log", seconds=1.2, steps=6))
    seen: list[float] = []
    with Client(vix_server.url) as vix:
        task_id = vix.create_task("record", {"text": "sync"})[0]
        done = vix.wait(task_id, timeout=60, on_progress=lambda task: seen.append(task["progress"]))
        doomed = vix.create_task("record", {"text": "doomed"})[0]

    async def async_wait() -> list[float]:
        progress: list[float] = []
        async with AsyncClient(vix_server.url) as vix:
            task = await vix.wait(doomed, timeout=60, on_progress=lambda t: progress.append(t["progress"]))
            assert task["status"] == "completed"
            third = (await vix.create_task("record", {"text": "cancelled"}))[0]
            waiting = asyncio.ensure_future(vix.wait(third, timeout=60))
            await asyncio.sleep(0.5)
            await vix.cancel(third)
            with pytest.raises(NotFound):
                await waiting
        return progress

    async_seen = asyncio.run(async_wait())
    assert done["status"] == "completed" and seen[-1] == 100.0
    for progress in (seen, async_seen):
        assert progress == sorted(progress) and len({p for p in progress if 0.1 < p < 100.0}) >= 2, progress
    log = vix_server.log()
    assert f"GET /vapi/tasks/events?task_id={task_id} HTTP/1.1" in log
    assert f"GET /vapi/tasks/progress/{task_id} " not in log, "the SDK did not poll"
