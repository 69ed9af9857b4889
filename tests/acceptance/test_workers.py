"""Real worker processes: a SIGKILLed worker's task finishes elsewhere after its lease expires; a
restarted server loses no queued task; two workers run every task exactly once."""

from __future__ import annotations

import collections
import time
from pathlib import Path

from tests.support import Server, Worker, record_flow, wait_for

FAST_LEASE = {"VIX_LEASE_SECONDS": "2", "VIX_MAX_ATTEMPTS": "3"}


def _create(server: Server, text: str, name: str = "record") -> int:
    with server.client() as http:
        answer = http.put(f"/vapi/tasks/create/{name}", data={"text": text})
    assert answer.status_code == 200, answer.text
    return int(answer.json()["tasks_ids"][0])


def _runs(log: Path) -> list[tuple[str, str]]:
    if not log.exists():
        return []
    return [tuple(line.split("\t")) for line in log.read_text().splitlines()]  # type: ignore[misc]


def test_killed_worker_task_completes_on_another_worker(tmp_path: Path, db_url: str) -> None:
    log = tmp_path / "runs.log"
    server = Server(tmp_path, db_url, local_workers=0, **FAST_LEASE)
    server.start()
    first = Worker(server, tmp_path, "first")
    second = Worker(server, tmp_path, "second")
    try:
        server.install(record_flow(log, seconds=6.0, steps=30))
        first.start()
        task_id = _create(server, "job")
        with server.client() as http:
            running = wait_for(task_id, http, until="running")
            while not _runs(log):
                time.sleep(0.05)
            first.kill()  # SIGKILL mid-task: no goodbye, no lock release
            second.start()
            done = wait_for(task_id, http, timeout=60)
        assert done["status"] == "completed" and done["error"] == ""
        assert done["attempts"] == 2
        assert done["worker_id"] != running["worker_id"]
        pids = [pid for _text, pid in _runs(log)]
        assert len(pids) == 2 and pids[0] != pids[1], "started on the killed worker, finished on the other"
    finally:
        first.stop()
        second.stop()
        server.stop()


def test_task_fails_after_max_attempts(tmp_path: Path, db_url: str) -> None:
    log = tmp_path / "runs.log"
    server = Server(tmp_path, db_url, local_workers=0, VIX_LEASE_SECONDS="1", VIX_MAX_ATTEMPTS="2")
    server.start()
    try:
        server.install(record_flow(log, seconds=30.0, steps=30))
        task_id = _create(server, "doomed")
        with server.client() as http:
            for attempt in range(2):
                worker = Worker(server, tmp_path, f"w{attempt}")
                worker.start()
                while len(_runs(log)) <= attempt:
                    time.sleep(0.05)
                worker.kill()
            done = wait_for(task_id, http, timeout=30)
        assert done["status"] == "failed"
        assert "stopped reporting" in done["error"] and "2 attempt" in done["error"]
    finally:
        server.stop()


def test_server_restart_loses_no_queued_task(tmp_path: Path, db_url: str) -> None:
    log = tmp_path / "runs.log"
    server = Server(tmp_path, db_url, local_workers=0)
    server.start()
    server.install(record_flow(log))
    ids = [_create(server, f"job-{i}") for i in range(5)]
    server.stop()
    server.start()  # same database, same data folder
    worker = Worker(server, tmp_path, "after-restart")
    worker.start()
    try:
        with server.client() as http:
            assert (
                sorted(int(k) for k in http.get("/vapi/tasks/progress", params={"name": "record"}).json())
                == ids
            )
            assert all(wait_for(i, http)["status"] == "completed" for i in ids)
        assert sorted(text for text, _pid in _runs(log)) == [f"job-{i}" for i in range(5)]
    finally:
        worker.stop()
        server.stop()


def test_two_workers_run_every_task_exactly_once(tmp_path: Path, db_url: str) -> None:
    log = tmp_path / "runs.log"
    server = Server(tmp_path, db_url, local_workers=0)
    server.start()
    workers = [Worker(server, tmp_path, name) for name in ("a", "b")]
    try:
        server.install(record_flow(log, seconds=0.05, steps=2))
        for worker in workers:
            worker.start()
        with server.client() as http:
            while len(http.get("/vapi/workers/info").json()) < 2:  # both are polling before work arrives
                time.sleep(0.05)
        ids = [_create(server, f"job-{i}") for i in range(36)]
        with server.client() as http:
            finished = [wait_for(i, http, timeout=120) for i in ids]
        assert all(t["status"] == "completed" and t["attempts"] == 1 for t in finished)
        runs = _runs(log)
        counts = collections.Counter(text for text, _pid in runs)
        assert counts == {f"job-{i}": 1 for i in range(36)}
        assert len({pid for _text, pid in runs}) == 2, "both workers took part"
    finally:
        for worker in workers:
            worker.stop()
        server.stop()


def test_a_long_silent_node_keeps_its_lease(tmp_path: Path, sqlite_url: str) -> None:
    """One node working 4 s without reporting progress, under a 1.5 s lease: the worker's heartbeat
    keeps the claim alive, so the task runs once and is never handed to anyone else."""
    log = tmp_path / "runs.log"
    server = Server(tmp_path, sqlite_url, VIX_LEASE_SECONDS="1.5", VIX_MAX_ATTEMPTS="3")
    server.start()
    try:
        server.install(record_flow(log, seconds=4.0, steps=1))
        task_id = _create(server, "slow")
        with server.client() as http:
            done = wait_for(task_id, http, timeout=60)
        assert done["status"] == "completed" and done["attempts"] == 1
        assert len(_runs(log)) == 1
    finally:
        server.stop()
