"""The integration guide's lifecycle over real HTTP: create (multipart), poll, download; DEFAULT mode."""

from __future__ import annotations

import io
import zipfile

from PIL import Image

from tests.support import Server, png_bytes, wait_for

TASK_FIELDS = {
    "task_id",
    "name",
    "progress",
    "error",
    "outputs",
    "input_params",
    "input_files",
    "execution_time",
    "locked_at",
    "worker_id",
    "priority",
    "group_scope",
    "parent_task_id",
    "parent_task_node_id",
    "child_tasks",
    "translated_input_params",
    "created_at",
    "updated_at",
    "finished_at",
    "status",
}


def test_create_poll_download_like_the_integration_guide(vix_server: Server) -> None:
    with vix_server.client() as http:
        created = http.put(
            "/vapi/tasks/create/invert_image",
            files={"input_image": ("photo.png", png_bytes((10, 200, 30)), "image/png")},
        )
        assert created.status_code == 200, created.text
        body = created.json()
        assert len(body["tasks_ids"]) == 1
        assert body["outputs"] == [{"comfy_node_id": 9, "type": "image", "file_size": -1, "batch_size": -1}]

        task = wait_for(body["tasks_ids"][0], http)
        assert TASK_FIELDS <= set(task)
        assert task["progress"] == 100.0 and task["error"] == "" and task["status"] == "completed"
        assert task["name"] == "invert_image"
        assert task["input_files"][0]["file_size"] == len(png_bytes((10, 200, 30)))
        assert task["outputs"][0]["batch_size"] == 1 and task["outputs"][0]["file_size"] > 0
        assert isinstance(task["input_params"]["seed"], int)
        assert task["worker_id"] and task["finished_at"] and task["execution_time"] >= 0

        for output in task["outputs"]:
            result = http.get(
                "/vapi/tasks/results", params={"task_id": task["task_id"], "node_id": output["comfy_node_id"]}
            )
            assert result.status_code == 200
            assert result.headers["content-type"] == "image/png"
            image = Image.open(io.BytesIO(result.content))
            assert image.size == (32, 24)
            assert image.convert("RGB").getpixel((5, 5)) == (245, 55, 225)

        archive = http.get(
            "/vapi/tasks/results", params={"task_id": task["task_id"], "node_id": 9, "batch_index": -1}
        )
        assert archive.headers["content-type"] == "application/zip"
        assert len(zipfile.ZipFile(io.BytesIO(archive.content)).namelist()) == 1

        original = http.get("/vapi/tasks/inputs", params={"task_id": task["task_id"], "input_index": 0})
        assert original.content == png_bytes((10, 200, 30))


def test_count_seeds_and_listing_filters(vix_server: Server) -> None:
    with vix_server.client() as http:
        image = ("a.png", png_bytes(), "image/png")
        ids = http.put(
            "/vapi/tasks/create/invert_image",
            data={"count": "3", "seed": "10", "group_scope": "2"},
            files={"input_image": image},
        ).json()["tasks_ids"]
        assert len(ids) == 3
        other = http.put("/vapi/tasks/create/invert_image", files={"input_image": image}).json()["tasks_ids"]
        tasks = [wait_for(i, http) for i in ids + other]
        assert [t["input_params"]["seed"] for t in tasks[:3]] == [10, 11, 12]
        assert isinstance(tasks[3]["input_params"]["seed"], int)

        scoped = http.get("/vapi/tasks/progress", params={"group_scope": 2}).json()
        assert sorted(int(k) for k in scoped) == ids
        default_scope = http.get("/vapi/tasks/progress", params={"name": "invert_image"}).json()
        assert sorted(int(k) for k in default_scope) == other
        assert http.get("/vapi/tasks/progress", params={"name": "nope", "group_scope": 2}).json() == {}
        summary = http.get("/vapi/tasks/progress-summary", params={"group_scope": 2}).json()
        assert sorted(int(k) for k in summary) == ids
        assert all(v["progress"] == 100.0 for v in summary.values())


def test_create_sync_returns_a_zip_of_all_outputs(vix_server: Server) -> None:
    with vix_server.client(timeout=60) as http:
        answer = http.put(
            "/vapi/tasks/create-sync/invert_image",
            params={"timeout": 30},
            files={"input_image": ("a.png", png_bytes((0, 0, 0)), "image/png")},
        )
        assert answer.status_code == 200, answer.text
        names = zipfile.ZipFile(io.BytesIO(answer.content)).namelist()
        assert len(names) == 1 and names[0].endswith("_9_0.png")
        pixel = Image.open(io.BytesIO(zipfile.ZipFile(io.BytesIO(answer.content)).read(names[0]))).getpixel(
            (0, 0)
        )
        assert pixel[:3] == (255, 255, 255)


def test_create_sync_times_out_with_504(idle_server: Server) -> None:
    with idle_server.client() as http:
        answer = http.put(
            "/vapi/tasks/create-sync/invert_image",
            params={"timeout": 0.5},
            files={"input_image": ("a.png", png_bytes(), "image/png")},
        )
        assert answer.status_code == 504
        assert "timed out" in answer.json()["detail"]


def test_outputs_of_one_task_feed_another(vix_server: Server) -> None:
    with vix_server.client() as http:
        first = http.put(
            "/vapi/tasks/create/invert_image",
            files={"input_image": ("a.png", png_bytes((10, 20, 30)), "image/png")},
        ).json()["tasks_ids"][0]
        wait_for(first, http)
        child = http.put(
            "/vapi/tasks/create/invert_image",
            data={"child_task": "1", "input_image": f'{{"task_id": {first}, "node_id": 9}}'},
        )
        assert child.status_code == 200, child.text
        child_id = child.json()["tasks_ids"][0]
        done = wait_for(child_id, http)
        assert done["parent_task_id"] == first and done["parent_task_node_id"] == 9
        assert http.get(f"/vapi/tasks/progress/{first}").json()["child_tasks"] == [child_id]
        twice = http.get("/vapi/tasks/results", params={"task_id": child_id, "node_id": 9}).content
        assert Image.open(io.BytesIO(twice)).convert("RGB").getpixel((0, 0)) == (10, 20, 30)

        again = http.put(
            "/vapi/tasks/create/invert_image",
            data={"input_image": f'{{"task_id": {first}, "input_index": 0}}'},
        ).json()["tasks_ids"][0]
        wait_for(again, http)
        assert http.get("/vapi/tasks/inputs", params={"task_id": again}).content == png_bytes((10, 20, 30))
        only_parents = http.get("/vapi/tasks/progress", params={"only_parent": "true"}).json()
        assert child_id not in {int(k) for k in only_parents}

        http.delete("/vapi/tasks/task", params={"task_id": first}).raise_for_status()
        assert http.get(f"/vapi/tasks/progress/{child_id}").status_code == 404
