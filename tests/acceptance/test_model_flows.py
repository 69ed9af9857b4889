"""The real Visionatrix flow files run end to end through the real loaders, on tiny models written in
the real on-disk formats: SDXL Lightning (both step branches), BiRefNet general and lite, and u2netp
with its real weights on a real photo."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.support import FIXTURES, Server, wait_for

pytest.importorskip("torch", reason="the model flows need the worker extra (torch)")

FIXTURE_FLOWS = FIXTURES / "vixflows" / "flows"
pytestmark = pytest.mark.skipif(
    not FIXTURE_FLOWS.is_dir(), reason=f"fixture flows not found at {FIXTURE_FLOWS}"
)


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from visionatrix.testing.tiny_models import write_tiny_models

    out = tmp_path_factory.mktemp("models")
    write_tiny_models(out, u2netp=True)
    return out


@pytest.fixture
def model_server(tmp_path: Path, sqlite_url: str, models_dir: Path) -> Iterator[Server]:
    server = Server(tmp_path, sqlite_url, MODELS_DIR=str(models_dir))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _run(server: Server, flow: str, data: dict[str, str], files: dict | None = None) -> tuple[dict, bytes]:  # type: ignore[type-arg]
    with server.client(timeout=120) as http:
        created = http.put(f"/vapi/tasks/create/{flow}", data=data, files=files)
        assert created.status_code == 200, created.text
        task = wait_for(created.json()["tasks_ids"][0], http, timeout=300)
        assert task["error"] == "", task["error"]
        node = task["outputs"][0]["comfy_node_id"]
        image = http.get("/vapi/tasks/results", params={"task_id": task["task_id"], "node_id": node})
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    return task, image.content


def test_sdxl_lightning_flow_from_the_fixture_file(model_server: Server) -> None:
    installed = model_server.install(FIXTURE_FLOWS / "sdxl_lighting.json")
    assert {m["filename"] for m in installed["models"]} == {
        "sdxl_lightning_4step.safetensors",
        "sdxl_lightning_8step.safetensors",
    }
    assert all(m["installed"] for m in installed["models"])

    first_task, first = _run(
        model_server, "sdxl_lighting", {"prompt": "a photo of a cat", "seed": "42", "steps_number": "4 steps"}
    )
    assert Image.open(io.BytesIO(first)).size == (1024, 1024)
    _task, again = _run(
        model_server, "sdxl_lighting", {"prompt": "a photo of a cat", "seed": "42", "steps_number": "4 steps"}
    )
    assert again == first, "the same seed gives the same image"
    _task, other = _run(
        model_server, "sdxl_lighting", {"prompt": "a photo of a cat", "seed": "43", "steps_number": "4 steps"}
    )
    assert other != first
    _task, eight = _run(model_server, "sdxl_lighting", {"prompt": "a photo of a cat", "seed": "42"})
    assert Image.open(io.BytesIO(eight)).size == (1024, 1024) and eight != first
    assert first_task["input_params"]["steps_number"] == "4 steps"


def test_progress_moves_through_sampler_steps(model_server: Server) -> None:
    model_server.install(FIXTURE_FLOWS / "sdxl_lighting.json")
    seen: set[float] = set()
    with model_server.client() as http:
        task_id = http.put("/vapi/tasks/create/sdxl_lighting", data={"prompt": "a dog", "seed": "1"}).json()[
            "tasks_ids"
        ][0]
        while True:
            task = http.get(f"/vapi/tasks/progress/{task_id}").json()
            seen.add(task["progress"])
            if task["progress"] == 100.0 or task["error"]:
                break
    assert task["error"] == ""
    between = sorted(p for p in seen if 0.1 < p < 100.0)
    assert len(between) >= 2, f"progress moved in steps, not 0 → 100: {sorted(seen)}"


@pytest.mark.parametrize("flow", ["remove_background_birefnet", "remove_background_birefnet_lite"])
def test_birefnet_flows_give_rgba_of_the_input_size(model_server: Server, flow: str) -> None:
    model_server.install(FIXTURE_FLOWS / f"{flow}.json")
    photo = io.BytesIO()
    Image.new("RGB", (96, 64), (200, 30, 30)).save(photo, "PNG")
    _task, png = _run(model_server, flow, {}, {"input_image": ("p.png", photo.getvalue(), "image/png")})
    result = Image.open(io.BytesIO(png))
    assert result.mode == "RGBA" and result.size == (96, 64)
    # the cut-out's colour is the node's 8-bit (truncated) foreground estimate: the input's, within 1
    rgb = np.asarray(result)[..., :3].astype(int)
    assert np.abs(rgb - [200, 30, 30]).max() <= 1


def test_u2netp_cuts_out_a_real_photo(model_server: Server) -> None:
    from skimage import data

    with model_server.client() as http:
        installed = http.post("/vapi/flows/flow", params={"name": "remove_background_u2netp"})
        assert installed.status_code == 200, installed.text
    photo = io.BytesIO()
    Image.fromarray(data.chelsea()).save(photo, "PNG")
    _task, png = _run(
        model_server,
        "remove_background_u2netp",
        {},
        {"input_image": ("cat.png", photo.getvalue(), "image/png")},
    )
    alpha = np.asarray(Image.open(io.BytesIO(png)))[..., 3] / 255.0
    assert alpha.shape == data.chelsea().shape[:2]
    assert 0.1 < (alpha > 0.5).mean() < 0.9, "the cat, not everything or nothing"
    corners = [alpha[:10, :10], alpha[:10, -10:], alpha[-10:, :10], alpha[-10:, -10:]]
    assert max(c.mean() for c in corners[:2]) < 0.2, "the top corners (background) are transparent"
    h, w = alpha.shape
    assert alpha[h // 3 : 2 * h // 3, w // 3 : 2 * w // 3].mean() > 0.5, "the cat's middle is opaque"


def test_missing_models_name_the_files_and_where_to_put_them(tmp_path: Path, sqlite_url: str) -> None:
    server = Server(tmp_path, sqlite_url, HF_HUB_OFFLINE="1")  # offline, even on a machine with a network
    server.start()
    try:
        with server.client() as http:
            answer = http.post("/vapi/flows/flow", params={"name": "remove_background_birefnet"})
            assert answer.status_code == 200
            assert answer.json()["models"][0]["installed"] is False
            for _ in range(300):
                progress = {p["name"]: p for p in http.get("/vapi/flows/install-progress").json()}
                entry = progress.get("remove_background_birefnet")
                if entry and entry["finished_at"]:
                    break
                time.sleep(0.1)
            assert entry and "General.safetensors" in entry["error"]
            assert str(tmp_path / "models" / "birefnet" / "General.safetensors") in entry["error"]
            assert http.get("/vapi/flows/installed").json() == []
    finally:
        server.stop()
