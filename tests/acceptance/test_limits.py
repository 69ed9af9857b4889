"""Bounds (issue 7, points 3, 5 and 12): every oversized or out-of-range input is a clean 4xx on a
real server over SQLite and PostgreSQL; list and progress answers stay small; Visionatrix's statuses."""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import FLOWS, Server, png_bytes, record_flow

LIMITS = {
    "VIX_MAX_UPLOAD_MB": "1",
    "VIX_MAX_TEXT_KB": "4",
    "VIX_MAX_IMAGE_PIXELS": "4000000",
    "VIX_MAX_LIST_TASKS": "3",
}
WORKER = {
    "worker_details": {"worker_id": "limits", "system": {"hostname": "t"}},
    "tasks_names": ["invert_image"],
}
IMAGE = {"input_image": ("a.png", png_bytes(), "image/png")}
BEYOND_BIGINT = [2**63, 2**64 + 5, 10**30]


@pytest.fixture(scope="module")
def server(module_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """DEFAULT mode, no worker (the tests claim tasks themselves), small limits."""
    folder = tmp_path_factory.mktemp("limits")
    vix = Server(folder, module_db_url, local_workers=0, **LIMITS)
    vix.start()
    try:
        vix.install(FLOWS / "invert_image.json")
        vix.install(record_flow(folder / "record.log"))
        yield vix
    finally:
        vix.stop()


@pytest.fixture
def http(server: Server) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def _create(http: httpx.Client, **data: str) -> int:
    answer = http.put("/vapi/tasks/create/invert_image", data=data, files=IMAGE)
    assert answer.status_code == 200, answer.text
    return int(answer.json()["tasks_ids"][0])


def _claim(http: httpx.Client) -> dict[str, Any]:
    answer = http.post("/vapi/tasks/next", json=WORKER)
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def _detail(answer: httpx.Response) -> str:
    return str(answer.json()["detail"])


def test_task_ids_beyond_bigint_are_simply_not_found(http: httpx.Client) -> None:
    for task_id in [*BEYOND_BIGINT, -1, 0]:
        calls = {
            "progress": http.get(f"/vapi/tasks/progress/{task_id}"),
            "results": http.get("/vapi/tasks/results", params={"task_id": task_id, "node_id": 9}),
            "inputs": http.get("/vapi/tasks/inputs", params={"task_id": task_id}),
            "restart": http.post("/vapi/tasks/restart", params={"task_id": task_id}),
            "delete": http.delete("/vapi/tasks/task", params={"task_id": task_id}),
            "dequeue": http.delete(f"/vapi/tasks/queue/{task_id}"),
            "update": http.put("/vapi/tasks/update", params={"task_id": task_id}, json={"priority": 1}),
            "report": http.put("/vapi/tasks/progress", json={"task_id": task_id, "progress": 5.0}),
            "unlock": http.delete("/vapi/tasks/lock", params={"task_id": task_id}),
            "upload": http.put(
                "/vapi/tasks/results",
                params={"task_id": task_id},
                files=[("files", (f"{task_id}_9_0.png", png_bytes(), "image/png"))],
            ),
        }
        for route, answer in calls.items():
            assert answer.status_code == 404, (task_id, route, answer.status_code, answer.text)
            assert str(task_id) in _detail(answer), (route, answer.text)
        ref = json.dumps({"task_id": task_id, "node_id": 9})
        child = http.put("/vapi/tasks/create/invert_image", data={"input_image": ref})
        assert child.status_code == 400 and str(task_id) in _detail(child), child.text


def test_file_parts_beyond_the_upload_limit_are_413(http: httpx.Client) -> None:
    big = b"\0" * (1024 * 1024 + 10)
    for field in ("input_image", "some_unknown_field"):
        files = {**IMAGE, field: ("big.png", big, "image/png")}
        refused = http.put("/vapi/tasks/create/invert_image", files=files)
        assert refused.status_code == 413, refused.text
        assert field in _detail(refused) and "VIX_MAX_UPLOAD_MB" in _detail(refused)
    flow_file = http.put("/vapi/flows/flow", files={"flow_file": ("f.json", big, "application/json")})
    assert flow_file.status_code == 413 and "flow_file" in _detail(flow_file)
    assert http.get("/vapi/tasks/progress", params={"name": "invert_image"}).json() == {}, "nothing queued"

    task_id = _create(http)
    assert _claim(http)["task_id"] == task_id
    name = f"{task_id}_9_0.png"
    too_big = http.put("/vapi/tasks/results", params={"task_id": task_id}, files=[("files", (name, big))])
    assert too_big.status_code == 413 and "files" in _detail(too_big)
    assert http.get(f"/vapi/tasks/progress/{task_id}").json()["status"] == "running", "the claim survives"
    fine = http.put(
        "/vapi/tasks/results", params={"task_id": task_id}, files=[("files", (name, png_bytes()))]
    )
    assert fine.status_code == 204, fine.text


def test_text_beyond_the_limit_is_413_and_json_bodies_are_bounded(http: httpx.Client) -> None:
    long_text = "x" * (4 * 1024 + 1)
    for body in ({"data": {"text": long_text}}, {"data": {"text": long_text}, "files": {"f": ("a", b"1")}}):
        refused = http.put("/vapi/tasks/create/record", **body)  # type: ignore[arg-type]
        assert refused.status_code == 413, refused.text
        assert "'text'" in _detail(refused) and "VIX_MAX_TEXT_KB" in _detail(refused)
    huge_json = http.put(
        "/vapi/tasks/progress", content=b'{"task_id": 1, "error": "' + b"e" * (2 * 2**20) + b'"}'
    )
    assert huge_json.status_code == 413, huge_json.text
    # count x input size is bounded too: 30 tasks of 3 KiB each pass what one create may add
    many = http.put("/vapi/tasks/create/record", data={"text": "y" * 3000, "count": "30"})
    assert many.status_code == 400 and "count=30" in _detail(many), many.text
    assert http.get("/vapi/tasks/progress", params={"name": "record"}).json() == {}


def _png_header_only(width: int, height: int) -> bytes:
    """A valid 1-bit grayscale PNG of any size: rows of zeros compress about 1000:1."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    packer = zlib.compressobj(9)
    row = b"\0" * (1 + (width + 7) // 8)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_images_are_judged_by_their_header(http: httpx.Client) -> None:
    bomb = _png_header_only(30000, 30000)
    assert len(bomb) < 200_000
    refused = http.put(
        "/vapi/tasks/create/invert_image", files={"input_image": ("bomb.png", bomb, "image/png")}
    )
    assert refused.status_code == 400 and "VIX_MAX_IMAGE_PIXELS" in _detail(refused), refused.text
    wide = png_bytes(size=(3000, 2000))
    refused = http.put("/vapi/tasks/create/invert_image", files={"input_image": ("w.png", wide, "image/png")})
    assert refused.status_code == 400 and "3000x2000" in _detail(refused), refused.text
    assert http.put("/vapi/tasks/create/invert_image", files=IMAGE).status_code == 200


def test_list_answers_are_bounded_and_pageable(http: httpx.Client) -> None:
    http.delete("/vapi/tasks/queue", params={"name": "record"})
    ids = [
        int(http.put("/vapi/tasks/create/record", data={"text": f"t{i}"}).json()["tasks_ids"][0])
        for i in range(5)
    ]
    for route in ("/vapi/tasks/progress", "/vapi/tasks/progress-summary"):
        capped = http.get(route, params={"name": "record"})
        assert list(capped.json()) == [str(i) for i in ids[-3:]], "the newest VIX_MAX_LIST_TASKS"
        assert capped.headers["x-total-count"] == "5"
        page = http.get(route, params={"name": "record", "limit": 2, "offset": 2})
        assert list(page.json()) == [str(i) for i in ids[2:4]]
    # an input at the text limit is echoed once per task, never more: the answer stays near its size
    text = "z" * (4 * 1024)
    task_id = http.put("/vapi/tasks/create/record", data={"text": text}).json()["tasks_ids"][0]
    answer = http.get(f"/vapi/tasks/progress/{task_id}")
    assert answer.json()["input_params"]["text"] == text
    assert len(answer.content) < 2 * len(text)
    http.delete("/vapi/tasks/queue", params={"name": "record"})


def test_statuses_as_visionatrix_answers_them(http: httpx.Client) -> None:
    http.delete("/vapi/tasks/queue", params={"name": "invert_image"})
    task_id = _create(http)
    assert _claim(http)["task_id"] == task_id
    upload = [("files", (f"{task_id}_9_0.png", png_bytes(), "image/png"))]
    http.put("/vapi/tasks/results", params={"task_id": task_id}, files=upload).raise_for_status()
    for force in ("false", "true"):
        again = http.post("/vapi/tasks/restart", params={"task_id": task_id, "force": force})
        assert again.status_code == 400 and "already finished" in _detail(again), again.text
    sync = http.put("/vapi/tasks/create-sync/invert_image", data={"count": "2"}, files=IMAGE)
    assert sync.status_code == 400 and "count" in _detail(sync)


def _noise_png(side: int) -> bytes:
    import io

    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(7).integers(0, 256, (side, side, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG", compress_level=0)
    return buffer.getvalue()


def test_an_upload_streams_to_disk_and_is_never_held_whole(tmp_path: Path, sqlite_url: str) -> None:
    big = _noise_png(4000)  # a real 48 MB image: it is checked and stored, not merely skipped
    server = Server(tmp_path, sqlite_url, local_workers=0)
    server.start()
    try:
        server.install(FLOWS / "invert_image.json")
        with server.client() as http:
            assert http.put("/vapi/tasks/create/invert_image", files=IMAGE).status_code == 200
            before = _peak_rss(server)
            created = http.put("/vapi/tasks/create/invert_image", files={"input_image": ("big.png", big)})
            assert created.status_code == 200, created.text
            grown = _peak_rss(server) - before
            task_id = created.json()["tasks_ids"][0]
            stored = http.get("/vapi/tasks/inputs", params={"task_id": task_id})
            assert stored.content == big
        mb = len(big) / 2**20
        assert grown < 16 * 2**20, (
            f"the server's peak memory grew by {grown / 2**20:.0f} MB for a {mb:.0f} MB part"
        )
    finally:
        server.stop()


def _peak_rss(server: Server) -> int:
    assert server.proc is not None
    status = Path(f"/proc/{server.proc.pid}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024
