"""Queue management routes and the worker API, driven by hand against a server with no worker."""

from __future__ import annotations

import threading
import time

import httpx

from tests.support import Server, png_bytes

IMAGE = {"input_image": ("a.png", png_bytes(), "image/png")}
WORKER = {
    "worker_details": {"worker_id": "test-worker", "system": {"hostname": "t"}},
    "tasks_names": ["invert_image"],
}


def _create(http: httpx.Client, **data: str) -> int:
    answer = http.put("/vapi/tasks/create/invert_image", data=data, files=IMAGE)
    assert answer.status_code == 200, answer.text
    return int(answer.json()["tasks_ids"][0])


def _claim(http: httpx.Client, **body: object) -> dict:  # type: ignore[type-arg]
    answer = http.post("/vapi/tasks/next", json={**WORKER, **body})
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def test_priority_orders_claims_and_can_change_while_queued(idle_server: Server) -> None:
    with idle_server.client() as http:
        low = _create(http, priority="1")
        high = _create(http, priority="9")
        middle = _create(http, priority="5")
        bumped = _create(http, priority="0")
        assert (
            http.put("/vapi/tasks/update", params={"task_id": bumped}, json={"priority": 15}).status_code
            == 204
        )
        order = [_claim(http)["task_id"] for _ in range(4)]
        assert order == [bumped, high, middle, low]
        assert http.post("/vapi/tasks/next", json=WORKER).status_code == 204
        refused = http.put("/vapi/tasks/update", params={"task_id": low}, json={"priority": 3})
        # Visionatrix answers 400 once a task has started
        assert refused.status_code == 400 and "already started" in refused.json()["detail"]


def test_worker_api_progress_results_and_the_100_rule(idle_server: Server) -> None:
    with idle_server.client() as http:
        task_id = _create(http)
        claimed = _claim(http)
        assert claimed["task_id"] == task_id and claimed["flow_comfy"]["9"]["class_type"] == "SaveImage"
        assert claimed["input_files"][0]["file_name"]
        report = {"worker_details": WORKER["worker_details"], "task_id": task_id, "execution_time": 1.5}
        assert http.put("/vapi/tasks/progress", json={**report, "progress": 100.0}).status_code == 204
        running = http.get(f"/vapi/tasks/progress/{task_id}").json()
        assert running["status"] == "running" and running["progress"] <= 99.9
        assert http.get("/vapi/tasks/results", params={"task_id": task_id, "node_id": 9}).status_code == 400

        missing = http.put(
            "/vapi/tasks/results",
            params={"task_id": task_id},
            files=[("files", (f"{task_id}_5_0.png", b"x", "image/png"))],
        )
        assert missing.status_code == 400 and "node 5" in missing.json()["detail"]
        stored = http.put(
            "/vapi/tasks/results",
            params={"task_id": task_id},
            files=[
                ("files", (f"{task_id}_9_0.png", png_bytes(), "image/png")),
                ("files", (f"{task_id}_9_1.png", png_bytes((1, 2, 3)), "image/png")),
            ],
        )
        assert stored.status_code == 204, stored.text
        done = http.get(f"/vapi/tasks/progress/{task_id}").json()
        assert done["progress"] == 100.0 and done["status"] == "completed"
        assert done["outputs"][0]["batch_size"] == 2 and done["execution_time"] == 1.5
        second = http.get("/vapi/tasks/results", params={"task_id": task_id, "node_id": 9, "batch_index": 1})
        assert second.content == png_bytes((1, 2, 3))
        assert (
            http.get(
                "/vapi/tasks/results", params={"task_id": task_id, "node_id": 9, "batch_index": 2}
            ).status_code
            == 404
        )
        assert http.get("/vapi/tasks/results", params={"task_id": task_id, "node_id": 4}).status_code == 404


def test_error_restart_and_force_restart(idle_server: Server) -> None:
    with idle_server.client() as http:
        task_id = _create(http)
        _claim(http)
        refused = http.post("/vapi/tasks/restart", params={"task_id": task_id})
        assert refused.status_code == 400 and "no error set" in refused.json()["detail"]
        report = {"worker_details": WORKER["worker_details"], "task_id": task_id, "progress": 40.0}
        http.put(
            "/vapi/tasks/progress", json={**report, "error": "node 2 (ImageInvert): boom"}
        ).raise_for_status()
        failed = http.get(f"/vapi/tasks/progress/{task_id}").json()
        assert failed["status"] == "failed" and failed["error"] == "node 2 (ImageInvert): boom"
        assert http.put("/vapi/tasks/progress", json=report).status_code == 404

        assert http.post("/vapi/tasks/restart", params={"task_id": task_id}).status_code == 204
        again = http.get(f"/vapi/tasks/progress/{task_id}").json()
        assert again["status"] == "queued" and again["error"] == "" and again["progress"] == 0.0
        _claim(http)
        assert (
            http.post("/vapi/tasks/restart", params={"task_id": task_id, "force": "true"}).status_code == 204
        )
        assert http.put("/vapi/tasks/progress", json=report).status_code == 404, "the old claim is gone"
        assert _claim(http)["task_id"] == task_id


def test_delete_cancels_a_running_task_and_queue_routes(idle_server: Server) -> None:
    with idle_server.client() as http:
        running = _create(http)
        _claim(http)
        http.delete("/vapi/tasks/task", params={"task_id": running}).raise_for_status()
        report = {"worker_details": WORKER["worker_details"], "task_id": running, "progress": 50.0}
        assert http.put("/vapi/tasks/progress", json=report).status_code == 404
        assert http.get(f"/vapi/tasks/progress/{running}").status_code == 404

        queued = [_create(http) for _ in range(3)]
        assert http.delete(f"/vapi/tasks/queue/{queued[0]}").status_code == 204
        assert http.delete("/vapi/tasks/queue", params={"name": "invert_image"}).status_code == 204
        assert http.get("/vapi/tasks/progress", params={"name": "invert_image"}).json() == {}

        finished = _create(http)
        _claim(http)
        http.put(
            "/vapi/tasks/results",
            params={"task_id": finished},
            files=[("files", (f"{finished}_9_0.png", png_bytes(), "image/png"))],
        ).raise_for_status()
        waiting = _create(http)
        # as in Visionatrix, removing a finished task from the queue removes nothing
        assert http.delete(f"/vapi/tasks/queue/{finished}").status_code == 204
        assert http.get(f"/vapi/tasks/progress/{finished}").json()["status"] == "completed"
        assert http.delete("/vapi/tasks/clear", params={"name": "invert_image"}).status_code == 204
        left = http.get("/vapi/tasks/progress", params={"name": "invert_image"}).json()
        assert list(left) == [str(waiting)]


def test_long_poll_wakes_on_new_task(idle_server: Server) -> None:
    with idle_server.client(timeout=60) as http:
        answers: list[httpx.Response] = []
        poll = threading.Thread(
            target=lambda: answers.append(http.post("/vapi/tasks/next", params={"wait": 20}, json=WORKER))
        )
        started = time.monotonic()
        poll.start()
        time.sleep(0.5)
        assert poll.is_alive(), "the poll waits while there is no task"
        with idle_server.client() as other:
            task_id = _create(other)
        poll.join(timeout=20)
        assert not poll.is_alive()
        assert answers[0].status_code == 200 and answers[0].json()["task_id"] == task_id
        assert time.monotonic() - started < 20, "woken by the new task, not by the end of the wait"


def test_release_lock_requeues(idle_server: Server) -> None:
    with idle_server.client() as http:
        task_id = _create(http)
        _claim(http)
        assert http.delete("/vapi/tasks/lock", params={"task_id": task_id}).status_code == 204
        assert http.get(f"/vapi/tasks/progress/{task_id}").json()["status"] == "queued"
        workers = http.get("/vapi/workers/info").json()
        # a worker's id is always under the user it authenticates as
        assert [w["worker_id"] for w in workers] == ["admin:test-worker"]
        settings = {"worker_id": "test-worker", "tasks_to_give": ["other_flow"]}
        assert http.post("/vapi/workers/settings", json=settings).status_code == 204
        assert http.post("/vapi/tasks/next", json=WORKER).status_code == 204, (
            "tasks_to_give restricts the worker"
        )
