"""Stopping workers for real: SIGTERM to a busy worker, deleting a running task, a server that dies
under its local worker, and refused credentials (real processes throughout)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.support import Server, Worker, record_flow, wait_for

SLOW = 120.0  # a task far longer than any bound below: finishing it is never how a test passes
STOP_BOUND = 20.0  # "within a few seconds", with room for a loaded machine


def _create(http: httpx.Client, text: str = "x") -> int:
    answer = http.put("/vapi/tasks/create/record", data={"text": text})
    assert answer.status_code == 200, answer.text
    return int(answer.json()["tasks_ids"][0])


def _started(runs: Path, count: int = 1) -> None:
    while not runs.exists() or len(runs.read_text().splitlines()) < count:
        time.sleep(0.05)


def _exits_within(proc: subprocess.Popen[bytes], seconds: float) -> int | None:
    try:
        return proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        return None


@pytest.mark.parametrize("steps", [1200, 1], ids=["cancel-points", "one-long-call"])
def test_sigterm_stops_a_busy_worker_and_its_task_goes_back(
    tmp_path: Path, sqlite_url: str, steps: int
) -> None:
    """With cancel points the task stops at the next one; a node with none (one long call) gets a
    bounded grace, then the claim is given back anyway and the process exits."""
    runs = tmp_path / "runs.log"
    server = Server(tmp_path, sqlite_url, local_workers=0)
    server.start()
    worker = Worker(server, tmp_path, "busy")
    try:
        server.install(record_flow(runs, seconds=SLOW, steps=steps))
        worker.start()
        with server.client() as http:
            task_id = _create(http)
            _started(runs)
            assert worker.proc is not None
            os.kill(worker.proc.pid, signal.SIGTERM)
            assert _exits_within(worker.proc, STOP_BOUND) is not None, worker.log()[-3000:]
            task = http.get(f"/vapi/tasks/progress/{task_id}").json()
        assert task["status"] == "queued" and task["error"] == "", task
        assert task["attempts"] == 0, "released (its attempt returned), not left to expire"
        assert f"giving task {task_id} back" in worker.log()
    finally:
        worker.stop()
        server.stop()


def test_deleting_a_running_task_stops_its_work_promptly(tmp_path: Path, sqlite_url: str) -> None:
    runs = tmp_path / "runs.log"
    server = Server(tmp_path, sqlite_url, local_workers=0)
    server.start()
    worker = Worker(server, tmp_path, "cancel")
    try:
        server.install(record_flow(runs, seconds=SLOW, steps=1200))
        server.install(record_flow(runs, seconds=0.0, steps=1, name="quick"))
        worker.start()
        with server.client() as http:
            slow = _create(http)
            _started(runs)
            assert http.delete("/vapi/tasks/task", params={"task_id": slow}).status_code in (200, 204)
            quick = int(http.put("/vapi/tasks/create/quick", data={"text": "y"}).json()["tasks_ids"][0])
            # one worker runs one task at a time: the next completes only once the deleted one stopped
            done = wait_for(quick, http, timeout=STOP_BOUND)
        assert done["status"] == "completed"
        assert f"task {slow} cancelled" in worker.log()
        assert worker.alive()
    finally:
        worker.stop()
        server.stop()


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")  # a zombie has exited; nobody may be left to reap it


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_local_worker_exits_when_its_server_process_is_gone(
    tmp_path: Path, sqlite_url: str, sig: int
) -> None:
    """Only the server process gets the signal (not its group): its local worker must not outlive
    it. On SIGTERM the worker goes first, giving back its task while the server still answers."""
    runs = tmp_path / "runs.log"
    server = Server(tmp_path, sqlite_url, local_workers=1)
    server.start()
    assert server.proc is not None
    try:
        server.install(record_flow(runs, seconds=SLOW, steps=1200))
        with server.client() as http:
            task_id = _create(http)
            _started(runs)
        (worker_pid,) = _children(server.proc.pid)
        os.kill(server.proc.pid, sig)
        deadline = time.monotonic() + STOP_BOUND
        while not _gone(worker_pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _gone(worker_pid), f"local worker {worker_pid} outlived its server:\n{server.log()[-3000:]}"
        if sig == signal.SIGTERM:
            assert _exits_within(server.proc, STOP_BOUND) is not None
            with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as db:
                row = db.execute("SELECT status, attempts FROM tasks WHERE id = ?", (task_id,)).fetchone()
            assert row == ("queued", 0), "the local worker gave its task back before the server went"
    finally:
        server.kill()  # and whatever it left in its process group


def test_a_worker_with_refused_credentials_stops_naming_worker_auth(tmp_path: Path, sqlite_url: str) -> None:
    server = Server(tmp_path, sqlite_url, mode="SERVER", local_workers=0)
    server.start()
    workers = [Worker(server, tmp_path, "none", auth=""), Worker(server, tmp_path, "wrong", auth="admin:no")]
    try:
        for worker in workers:
            worker.start()
            assert worker.proc is not None
            assert _exits_within(worker.proc, STOP_BOUND) == 1, worker.log()[-3000:]
            errors = [line for line in worker.log().splitlines() if line.startswith("error:")]
            assert len(errors) == 1 and "WORKER_AUTH" in errors[0], worker.log()[-3000:]
            assert "Traceback" not in worker.log()
    finally:
        for worker in workers:
            worker.stop()
        server.stop()
