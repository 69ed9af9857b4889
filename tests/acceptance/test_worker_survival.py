"""Nothing that happens to one task ends a worker (real server, real worker processes).

Tasks deleted at every stage of their run are dropped; a server that cannot store the results
(a real full disk) gets the task back (its claim released) and the worker carries on; a model
file missing on the worker gives the task back and the flow waits until the file is there.
"""

from __future__ import annotations

import errno
import random
import time
from pathlib import Path

import httpx

from tests.support import FLOWS, Server, Worker, png_bytes, record_flow, tiny_disk, wait_for
from visionatrix.worker.flows import FLOWS_TTL

STORM_SECONDS = 30.0  # the adversary deleted tasks for this long


def _create_invert(http: httpx.Client) -> int:
    image = {"input_image": ("in.png", png_bytes(), "image/png")}
    answer = http.put("/vapi/tasks/create/invert_image", files=image)
    assert answer.status_code == 200, answer.text
    return int(answer.json()["tasks_ids"][0])


def _delete_once_claimed(http: httpx.Client, task_id: int, delay: float) -> None:
    """Delete the task as soon as a worker holds it (after ``delay``): a user cancelling it."""
    for _ in range(2000):
        if http.get(f"/vapi/tasks/progress/{task_id}").json()["status"] != "queued":
            break
    time.sleep(delay)
    assert http.delete("/vapi/tasks/task", params={"task_id": task_id}).status_code in (200, 204, 404)


def test_a_worker_survives_tasks_deleted_as_fast_as_they_are_claimed(tmp_path: Path, sqlite_url: str) -> None:
    server = Server(tmp_path, sqlite_url, local_workers=0)
    server.start()
    worker = Worker(server, tmp_path, "storm")
    rng = random.Random(7)
    try:
        server.install(FLOWS / "invert_image.json")
        worker.start()
        rounds = 0
        with server.client() as http:
            end = time.monotonic() + STORM_SECONDS
            while time.monotonic() < end and worker.alive():
                # most deletions land at once (input download), the rest later (progress, results)
                _delete_once_claimed(http, _create_invert(http), rng.choice([0.0, 0.0, rng.uniform(0, 0.05)]))
                rounds += 1
            assert worker.alive(), f"worker died after {rounds} rounds:\n{worker.log()[-3000:]}"
            done = wait_for(_create_invert(http), http, timeout=60)
        assert done["status"] == "completed" and done["error"] == ""
        assert "Traceback" not in worker.log()
    finally:
        worker.stop()
        server.stop()


def _fill(folder: Path) -> Path:
    filler = folder / "filler"
    with open(filler, "wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def _runs(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


def test_results_the_server_cannot_store_go_back_to_the_queue(tmp_path: Path, sqlite_url: str) -> None:
    """A 5xx on the results upload (the server's disk is full): the worker retries, gives the
    claim back and carries on; once there is space the task completes, its attempt returned."""
    runs = tmp_path / "runs.log"
    with tiny_disk(tmp_path / "data") as data:
        server = Server(tmp_path, sqlite_url, local_workers=0)
        server.start()
        worker = Worker(server, tmp_path, "full-disk")
        try:
            server.install(record_flow(runs, seconds=0.1, steps=2))
            filler = _fill(data)
            worker.start()
            with server.client() as http:
                task_id = int(
                    http.put("/vapi/tasks/create/record", data={"text": "x"}).json()["tasks_ids"][0]
                )
                while f"giving task {task_id} back" not in worker.log():
                    assert worker.alive(), worker.log()[-3000:]
                    assert http.get(f"/vapi/tasks/progress/{task_id}").json()["status"] != "failed"
                    time.sleep(0.2)
                filler.unlink()
                done = wait_for(task_id, http, timeout=60)
            assert worker.alive()
            assert done["status"] == "completed" and done["attempts"] == 1, done
            assert _runs(runs) >= 2, "the given-back task ran again"
        finally:
            worker.stop()
            server.stop()


def test_a_missing_model_file_gives_the_task_back_until_the_file_is_there(
    tmp_path: Path, sqlite_url: str
) -> None:
    """The worker offers the flow (its model list says nothing is missing), but the file is not on
    this machine: the task goes back to the queue, not failed for good, and the worker stops taking
    that flow until the file appears; then it runs the task."""
    runs = tmp_path / "runs.log"
    model = tmp_path / "models" / "test_models" / "tiny.bin"
    server = Server(tmp_path, sqlite_url, local_workers=0)
    server.start()
    worker = Worker(server, tmp_path, "no-model")
    try:
        server.install(record_flow(runs, model=model.name))
        worker.start()
        with server.client() as http:
            task_id = int(http.put("/vapi/tasks/create/record", data={"text": "x"}).json()["tasks_ids"][0])
            released = f"giving task {task_id} back"
            while released not in worker.log():
                assert http.get(f"/vapi/tasks/progress/{task_id}").json()["status"] != "failed"
                time.sleep(0.1)
            time.sleep(FLOWS_TTL + 1)  # a full refresh of the worker's flows: still not offered
            waiting = http.get(f"/vapi/tasks/progress/{task_id}").json()
            assert waiting["status"] == "queued" and waiting["error"] == "", waiting
            assert worker.log().count(released) == 1
            model.parent.mkdir(parents=True)
            model.write_bytes(b"weights")
            done = wait_for(task_id, http, timeout=60)
        assert done["status"] == "completed" and done["attempts"] == 1, done
        assert worker.alive() and _runs(runs) == 1
    finally:
        worker.stop()
        server.stop()
