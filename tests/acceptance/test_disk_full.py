"""A full disk (issue 7, point 5): a real 2 MB tmpfs as the data folder. Storing an input or a
result that does not fit answers 507 with a clear detail, leaves no ``.tmp`` file and no task
behind, and the server goes on serving."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.support import FLOWS, Server, png_bytes, tiny_disk

WORKER = {
    "worker_details": {"worker_id": "disk", "system": {"hostname": "t"}},
    "tasks_names": ["invert_image"],
}


@pytest.fixture
def tiny_data(tmp_path: Path) -> Iterator[Path]:
    with tiny_disk(tmp_path / "data") as data:  # the folder tests.support points BASE_DATA_DIR at
        yield data


def _noise_png(side: int) -> bytes:
    pixels = np.random.default_rng(3).integers(0, 256, (side, side, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG", compress_level=0)
    return buffer.getvalue()


def _leftovers(data: Path) -> list[str]:
    return sorted(p.name for p in data.rglob("*") if p.name.endswith(".tmp"))


def test_a_full_data_folder_answers_507_and_leaves_nothing_behind(tiny_data: Path, db_url: str) -> None:
    big = _noise_png(1000)  # ~3 MB: more than the whole folder holds
    server = Server(tiny_data.parent, db_url, local_workers=0)
    server.start()
    try:
        server.install(FLOWS / "invert_image.json")
        with server.client() as http:
            full = http.put("/vapi/tasks/create/invert_image", files={"input_image": ("big.png", big)})
            assert full.status_code == 507, full.text
            assert "no space left" in full.json()["detail"]
            assert _leftovers(tiny_data) == [] and list((tiny_data / "input").iterdir()) == []
            assert http.get("/vapi/tasks/progress").json() == {}, "no task was queued"

            small = http.put("/vapi/tasks/create/invert_image", files={"input_image": ("a.png", png_bytes())})
            assert small.status_code == 200, "the room the failed write took is free again"
            task_id = small.json()["tasks_ids"][0]
            assert http.post("/vapi/tasks/next", json=WORKER).json()["task_id"] == task_id
            result = [("files", (f"{task_id}_9_0.png", big, "image/png"))]
            full = http.put("/vapi/tasks/results", params={"task_id": task_id}, files=result)
            assert full.status_code == 507 and "no space left" in full.json()["detail"], full.text
            assert _leftovers(tiny_data) == [] and list((tiny_data / "output").iterdir()) == []
            assert http.get(f"/vapi/tasks/progress/{task_id}").json()["status"] == "running"

            fits = [("files", (f"{task_id}_9_0.png", png_bytes(), "image/png"))]
            assert http.put("/vapi/tasks/results", params={"task_id": task_id}, files=fits).status_code == 204
            assert http.get(f"/vapi/tasks/progress/{task_id}").json()["progress"] == 100.0
        assert server.alive()
    finally:
        server.stop()
