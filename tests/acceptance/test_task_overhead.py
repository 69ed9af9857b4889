"""What a task costs beyond its work (issue 14), on a real server and worker: a quick task makes
only the calls it needs (no progress report, no separate final report), its run time arrives with
its results, a slow task still reports progress, and every answer says the server's own time."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import FLOWS, Server, png_bytes, record_flow, wait_for
from visionatrix.client import Client

DETAILS = {"worker_id": "test-worker", "system": {"hostname": "test"}}


def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _paths(record: dict[str, Any]) -> list[str]:
    return [f"{c['method']} {c['path']}" for c in record["calls"]]


@pytest.fixture
def profiled(tmp_path: Path, sqlite_url: str) -> Iterator[Server]:
    server = Server(tmp_path, sqlite_url, VIX_STAGE_LOG=str(tmp_path / "stages.jsonl"))
    server.start()
    yield server
    server.stop()


def test_a_quick_task_makes_only_the_calls_it_needs(profiled: Server, tmp_path: Path) -> None:
    profiled.install(FLOWS / "invert_image.json")
    with profiled.client() as http:
        created = http.put("/vapi/tasks/create/invert_image", files={"input_image": png_bytes()})
        assert created.headers["server-timing"].startswith("app;dur=")
        task = wait_for(created.json()["tasks_ids"][0], http)
    assert task["progress"] == 100.0 and task["status"] == "completed"
    [record] = _records(tmp_path / "stages.jsonl")
    # after the claim (which may re-read the installed flows first, and brings the small input
    # inside its answer): upload the results (which also finish the task), nothing else
    paths = _paths(record)
    assert paths[-2:] == ["POST /vapi/tasks/next", "PUT /vapi/tasks/results"]
    assert set(paths[:-2]) <= {"GET /vapi/flows/installed"}
    assert all(c["server_ms"] is not None and c["server_ms"] >= 0 for c in record["calls"])
    names = [s["name"] for s in record["spans"]]  # in the order they started
    assert names[:2] == ["claim", "inputs"] and names[-2:] == ["results", "cleanup"]
    assert names[2:-2] == ["graph", "node 1", "node 2", "node 9"]
    # the run's time came with the results: it covers the graph, and is no longer than the whole task
    spans = {s["name"]: s for s in record["spans"]}
    graph = spans["graph"]["end"] - spans["graph"]["start"]
    whole = spans["results"]["end"] - spans["inputs"]["start"]
    assert graph <= task["execution_time"] <= whole


def test_a_slow_task_still_reports_its_progress(profiled: Server, tmp_path: Path) -> None:
    profiled.install(record_flow(tmp_path / "ran.log", seconds=1.5, steps=15))
    with profiled.client() as http:
        task_id = http.put("/vapi/tasks/create/record", data={"text": "x"}).json()["tasks_ids"][0]
        seen = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            task = http.get(f"/vapi/tasks/progress/{task_id}").json()
            seen.append(task["progress"])
            if task["progress"] == 100.0:
                break
            time.sleep(0.05)
    assert any(0 < p < 100 for p in seen), seen
    [record] = _records(tmp_path / "stages.jsonl")
    reports = [p for p in _paths(record) if p == "PUT /vapi/tasks/progress"]
    assert 2 <= len(reports) <= 1.5 / 0.2 + 2  # beats, coalesced to one per 0.2 s at most
    assert _paths(record)[-1] == "PUT /vapi/tasks/results"


def test_small_inputs_come_inside_the_claim_when_asked(idle_server: Server) -> None:
    small, large = png_bytes(size=(8, 8)), png_bytes(size=(300, 300))
    with Client(idle_server.url) as vix:
        first = vix.create_task("invert_image", files={"input_image": small})[0]
        second = vix.create_task("invert_image", files={"input_image": large})[0]
        plain = vix.next_task(DETAILS, ["invert_image"])
        asked = vix.next_task(DETAILS, ["invert_image"], inline_inputs=len(small))
    assert plain is not None and plain["task_id"] == first
    assert "content_base64" not in plain["input_files"][0]  # a worker that does not ask: as before
    assert asked is not None and asked["task_id"] == second
    assert "content_base64" not in asked["input_files"][0]  # larger than asked for: downloaded
    with Client(idle_server.url) as vix:
        third = vix.create_task("invert_image", files={"input_image": small})[0]
        inlined = vix.next_task(DETAILS, ["invert_image"], inline_inputs=len(small))
        assert inlined is not None and inlined["task_id"] == third
        assert base64.b64decode(inlined["input_files"][0]["content_base64"]) == vix.task_input(third, 0)


def test_results_carry_the_execution_time(idle_server: Server) -> None:
    with Client(idle_server.url) as vix:
        task_id = vix.create_task("invert_image", files={"input_image": png_bytes()})[0]
        task = vix.next_task(DETAILS, ["invert_image"])
        assert task is not None and task["task_id"] == task_id
        name = f"{task_id}_9_0.png"
        for bad in ("soon", "-1", "nan"):
            answer = _upload(idle_server, task_id, name, bad)
            assert answer.status_code == 400 and "execution_time" in answer.json()["detail"], answer.text
        vix.upload_results(task_id, [(name, png_bytes(), "image/png")], DETAILS, execution_time=2.25)
        done = vix.progress(task_id)
    assert done["progress"] == 100.0 and done["execution_time"] == 2.25


def _upload(server: Server, task_id: int, name: str, execution_time: str) -> httpx.Response:
    files = [("files", (name, png_bytes(), "image/png"))]
    data = {"worker_details": json.dumps(DETAILS), "execution_time": execution_time}
    return httpx.put(f"{server.url}/vapi/tasks/results", params={"task_id": task_id}, files=files, data=data)


def test_a_worker_with_two_slots_runs_two_tasks_at_once(tmp_path: Path, sqlite_url: str) -> None:
    server = Server(tmp_path, sqlite_url, VIX_WORKER_SLOTS="2")
    server.start()
    try:
        server.install(record_flow(tmp_path / "ran.log", seconds=2.0, steps=20))
        with server.client() as http:
            ids = [
                http.put("/vapi/tasks/create/record", data={"text": t}).json()["tasks_ids"][0] for t in "abc"
            ]
            both_running = False
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not both_running:
                states = [http.get(f"/vapi/tasks/progress/{i}").json()["status"] for i in ids[:2]]
                both_running = states == ["running", "running"]
                time.sleep(0.05)
            done = [wait_for(i, http, timeout=60) for i in ids]
    finally:
        server.stop()
    assert both_running
    assert all(t["status"] == "completed" for t in done)
    assert sorted(line.split("\t")[0] for line in (tmp_path / "ran.log").read_text().splitlines()) == [
        "a",
        "b",
        "c",
    ]
