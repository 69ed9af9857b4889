"""All 52 Visionatrix catalog flows against one real server: each is listed with whether it runs here;
each one that runs installs from its unchanged fixture file and runs a task to a valid result on tiny
models; each one that does not is refused at install with every reason named, never half-run."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.support import FIXTURES, Server, wait_for
from visionatrix.testing.file_server import FileServer

pytest.importorskip("torch", reason="running the catalog flows needs the worker extra (torch)")

FIXTURE_FLOWS = FIXTURES / "vixflows" / "flows"
NAMES = sorted(p.stem for p in FIXTURE_FLOWS.glob("*.json"))
pytestmark = pytest.mark.skipif(not NAMES, reason=f"fixture flows not found at {FIXTURE_FLOWS}")
PROMPT = "a photo of a cat"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("catalog")
    models = workdir / "models"
    server = Server(workdir, f"sqlite:///{workdir / 'vix.db'}", MODELS_DIR=str(models), HF_HUB_OFFLINE="1")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def listing(server: Server) -> dict[str, dict[str, Any]]:
    with server.client() as http:
        answer = http.get("/vapi/flows/not-installed")
    assert answer.status_code == 200, answer.text
    return {flow["name"]: flow for flow in answer.json()}


def test_the_whole_catalog_is_listed_with_whether_it_runs(listing: dict[str, dict[str, Any]]) -> None:
    assert set(NAMES) <= set(listing) and len(NAMES) == 52
    for name, flow in listing.items():
        for field in ("display_name", "version", "models", "input_params", "is_supported_by_workers"):
            assert field in flow, (name, field)
        assert flow["runnable"] is (flow["unsupported_reasons"] == []), name
        assert flow["is_supported_by_workers"] is flow["runnable"]
    runnable = {n for n in NAMES if listing[n]["runnable"]}
    # what this engine runs today; each node family added later grows this set
    assert {"sdxl_lighting", "animagine_xl", "remove_background_birefnet"} <= runnable
    assert "flux1_dev" not in runnable and "hunyuan_dit" not in runnable


@pytest.mark.parametrize("name", NAMES)
def test_a_catalog_flow_runs_or_is_refused_with_its_reasons(
    server: Server, listing: dict[str, dict[str, Any]], name: str
) -> None:
    raw = (FIXTURE_FLOWS / f"{name}.json").read_bytes()
    flow = listing[name]
    if flow["runnable"]:
        _write_tiny_models(server, name)
    with server.client(timeout=60) as http:
        answer = http.put("/vapi/flows/flow", files={"flow_file": (f"{name}.json", raw, "application/json")})
        if not flow["runnable"]:
            _assert_refused(http, name, flow, answer)
            return
        assert answer.status_code == 200, answer.text
        assert all(m["installed"] for m in answer.json()["models"]), answer.json()["models"]
        assert name in {f["name"] for f in http.get("/vapi/flows/installed").json()}
        _run_to_a_valid_result(http, answer.json())


def _assert_refused(http: Any, name: str, flow: dict[str, Any], answer: Any) -> None:
    assert answer.status_code == 400, answer.text
    detail = answer.json()["detail"]
    assert detail.startswith(f"flow '{name}' cannot run on this server: ")
    for reason in flow["unsupported_reasons"]:
        assert reason in detail
    by_name = http.post("/vapi/flows/flow", params={"name": name})
    assert by_name.status_code == 400 and by_name.json()["detail"] == detail
    assert name not in {f["name"] for f in http.get("/vapi/flows/installed").json()}


def _write_tiny_models(server: Server, name: str) -> None:
    models = server.env["MODELS_DIR"]
    cmd = [sys.executable, "-m", "visionatrix.testing.tiny_models", "--out", models, "--flow", name]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=server.env)
    assert done.returncode == 0, done.stderr


def _inputs(flow: dict[str, Any]) -> tuple[dict[str, str], dict[str, tuple[str, bytes, str]]]:
    data: dict[str, str] = {"seed": "7"}
    files = {}
    for param in flow["input_params"]:
        if param["type"] == "range" and "steps" in param["name"] and param["min"] is not None:
            data[param["name"]] = str(param["min"])  # the cheapest valid run: these tiny runs are CPU-bound
        if param["optional"]:
            continue
        if param["type"] == "text":
            data[param["name"]] = PROMPT
        elif param["type"] in ("image", "image-mask"):
            files[param["name"]] = ("photo.png", _photo(), "image/png")
    return data, files


def _photo() -> bytes:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(48, 64, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def _run_to_a_valid_result(http: Any, flow: dict[str, Any]) -> None:
    data, files = _inputs(flow)
    created = http.put(f"/vapi/tasks/create/{flow['name']}", data=data, files=files or None)
    assert created.status_code == 200, created.text
    task = wait_for(created.json()["tasks_ids"][0], http, timeout=900)
    assert task["error"] == "" and task["progress"] == 100.0, task
    for output in task["outputs"]:
        result = http.get(
            "/vapi/tasks/results", params={"task_id": task["task_id"], "node_id": output["comfy_node_id"]}
        )
        assert result.status_code == 200 and result.headers["content-type"] == "image/png"
        pixels = np.asarray(Image.open(io.BytesIO(result.content)), dtype=np.float32)
        assert pixels.ndim == 3 and min(pixels.shape[:2]) >= 48
        assert pixels.std() > 0, "an image, not a constant fill"


def test_the_cli_lists_the_catalog_with_why_a_flow_does_not_run(server: Server) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "visionatrix", "flows", "--server", server.url],
        capture_output=True,
        text=True,
        timeout=60,
        env={**server.env, "COLUMNS": "400"},
    )
    assert done.returncode == 0, done.stderr
    lines = {line.split()[1]: line for line in done.stdout.splitlines() if line.count("│") > 3}
    assert "flux1_dev" in lines and " no " in lines["flux1_dev"]
    assert "node classes this engine does not implement" in lines["flux1_dev"]
    assert "remove_background_birefnet" in lines


def test_flows_url_serves_a_remote_catalog_and_its_updates(tmp_path: Path) -> None:
    with FileServer() as files:
        files.add("/vix/flows.zip", _zip(_invert_flow("1.0.0")))
        remote = Server(
            tmp_path,
            f"sqlite:///{tmp_path / 'vix.db'}",
            FLOWS_URL=f"{files.base_url}/vix/",
            VIX_CATALOG_TTL="0.5",
        )
        remote.start()
        try:
            with remote.client() as http:
                listed = http.get("/vapi/flows/not-installed").json()
                assert [(f["name"], f["version"], f["runnable"]) for f in listed] == [
                    ("invert", "1.0.0", True)
                ]
                files.add("/vix/flows.zip", _zip(_invert_flow("1.1.0")))
                for _ in range(100):  # picked up within the TTL, no restart
                    listed = http.get("/vapi/flows/not-installed").json()
                    if listed[0]["version"] == "1.1.0":
                        break
                    time.sleep(0.05)
                assert listed[0]["version"] == "1.1.0"
                assert any(r.if_none_match for r in files.requests), "revalidated with the ETag"
                assert http.post("/vapi/flows/flow", params={"name": "invert"}).status_code == 200
                created = http.put(
                    "/vapi/tasks/create/invert", files={"image": ("p.png", _photo(), "image/png")}
                )
                task = wait_for(created.json()["tasks_ids"][0], http, timeout=60)
                assert task["error"] == ""
                assert http.post("/vapi/flows/flow", params={"name": "sdxl_lighting"}).status_code == 404
                (installed,) = http.get("/vapi/flows/installed").json()
                assert (installed["private"], installed["new_version_available"]) == (False, "")
                files.add("/vix/flows.zip", _zip(_invert_flow("1.2.0")))
                time.sleep(0.6)
                assert http.get("/vapi/flows/not-installed").json() == []
                (installed,) = http.get("/vapi/flows/installed").json()
                assert (installed["version"], installed["new_version_available"]) == ("1.1.0", "1.2.0")
        finally:
            remote.stop()


def _invert_flow(version: str) -> dict[str, Any]:
    return {
        "1": {
            "class_type": "LoadImage",
            "inputs": {"image": ""},
            "_meta": {"title": "input;Image;custom_id=image"},
        },
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}, "_meta": {"title": "Invert"}},
        "9": {"class_type": "SaveImage", "inputs": {"images": ["2", 0]}, "_meta": {"title": "Save"}},
        "10": {
            "class_type": "VixUiWorkflowMetadata",
            "inputs": {"name": "invert", "display_name": "Invert", "version": version, "tags": "[]"},
            "_meta": {"title": "meta"},
        },
    }


def _zip(graph: dict[str, Any], name: str = "invert") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"flows/{name}.json", json.dumps(graph))
    return buffer.getvalue()


def test_a_download_whose_header_contradicts_the_catalog_is_not_installed(tmp_path: Path) -> None:
    """The catalog says SDXL; the file that arrives is SD 1.x: the install fails, no task ever runs."""
    import hashlib

    from tests.unit.test_model_architecture import SDXL_KEYS, write_header

    sd1 = {k for k in SDXL_KEYS if k.startswith("model.diffusion_model.") and "label_emb" not in k}
    fake = write_header(tmp_path / "fake.safetensors", sorted(sd1 | {"cond_stage_model.transformer.x"}))
    data = fake.read_bytes()
    graph = json.loads((FIXTURE_FLOWS / "animagine_xl.json").read_text())
    graph["276"]["inputs"]["name"] = "disguised"
    graph["2"]["inputs"]["ckpt_name"] = "disguised.safetensors"
    with FileServer() as files:
        entry = {
            "regexes": [{"input_value": "^disguised\\.safetensors$"}],
            "url": files.add("/m/disguised.safetensors", data),
            "hash": hashlib.sha256(data).hexdigest(),
            "file_size": len(data),
            "types": ["checkpoints"],
            "architecture": "sdxl",
        }
        files.add("/m/models_catalog.json", json.dumps({"Disguised": entry}).encode())
        files.add("/f/flows.zip", _zip(graph, "disguised"))
        server = Server(
            tmp_path,
            f"sqlite:///{tmp_path / 'vix.db'}",
            FLOWS_URL=files.url("/f/flows.zip"),
            MODELS_CATALOG_URL=files.url("/m/models_catalog.json"),
        )
        server.start()
        try:
            with server.client() as http:
                (listed,) = http.get("/vapi/flows/not-installed").json()
                assert listed["runnable"], "the catalog alone says SDXL"
                assert http.post("/vapi/flows/flow", params={"name": "disguised"}).status_code == 200
                for _ in range(200):
                    (progress,) = http.get("/vapi/flows/install-progress").json()
                    if progress["finished_at"]:
                        break
                    time.sleep(0.05)
                assert "is Stable Diffusion 1.x (by its file header)" in progress["error"], progress
                assert http.get("/vapi/flows/installed").json() == []
                (listed,) = http.get("/vapi/flows/not-installed").json()
                assert not listed["runnable"] and "by its file header" in listed["unsupported_reasons"][0]
        finally:
            server.stop()


def test_install_flow_on_the_command_line_refuses_before_downloading(tmp_path: Path) -> None:
    env = Server(tmp_path, f"sqlite:///{tmp_path / 'vix.db'}").env
    done = subprocess.run(
        [sys.executable, "-m", "visionatrix", "install-flow", "realvis_xl"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**env, "HF_HUB_OFFLINE": "1"},
    )
    assert done.returncode == 1
    assert "error: flow 'realvis_xl' cannot run on this server: sampler 'dpmpp_sde'" in done.stderr
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").rglob("*")), (
        "nothing downloaded"
    )
