"""All 52 Visionatrix catalog flows against one real server: each is listed with whether it runs here;
each one that runs installs from its unchanged fixture file and runs a task with the flow's defaults
to a valid result on tiny models; each one that does not is refused at install with every reason
named, never half-run. The flows of the SDXL family (and the background removers, the LLM flow) also
run with inputs other than their defaults: another size, step count, sampler path, strength, batch.

Cost: the flows' own sizes (~1 MP) and step counts (up to 50) run on the ``lean`` tiny SDXL
checkpoints (``testing/tiny_sdxl``), in float32 (the faster format for such narrow layers here).
"""

from __future__ import annotations

import io
import json
import re
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
from visionatrix.testing.llm_server import LLMServer

pytest.importorskip("torch", reason="running the catalog flows needs the worker extra (torch)")

FIXTURE_FLOWS = FIXTURES / "vixflows" / "flows"
NAMES = sorted(p.stem for p in FIXTURE_FLOWS.glob("*.json"))
pytestmark = pytest.mark.skipif(not NAMES, reason=f"fixture flows not found at {FIXTURE_FLOWS}")
PROMPT = "a photo of a cat"
# issue 10: these run end to end, with their defaults and with other inputs
FAMILY = (
    "sdxl_lighting",
    "remove_background_birefnet",
    "remove_background_birefnet_lite",
    "remove_background_bria",
    "animagine_xl",
    "realvis_xl",
    "proteus_xl",
    "playground_2_5_prometheus",
    "playground_2_5_aesthetic",
    "colorful_xl",
    "mobius_xl",
    "juggernaut_xl",
)  # and ask_ai_internal, whose other inputs tests/acceptance/test_llm.py runs against LLM servers
# issue 13: run by tests/acceptance/test_flux_flows.py (with the LLM server three of them ask), so
# here they are only installed
FLUX = (
    "flux1_dev",
    "flux1_schnell",
    "sketch_pencil",
    "animal_clothing",
    "flux1_kontext",
    "to_ghibli",
    "restore_old_photo",
    "colorful_xl_inpaint",
    "flux1_dev_inpaint",
    "flux1_schnell_inpaint",
    "flux1_extend",
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, llm_server: LLMServer) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("catalog")
    models = workdir / "models"
    server = Server(
        workdir,
        f"sqlite:///{workdir / 'vix.db'}",
        MODELS_DIR=str(models),
        HF_HUB_OFFLINE="1",
        VIX_PRECISION="float32",
    )
    server.start()
    try:
        with server.client() as http:  # ask_ai_internal asks "the internal" LLM: a loopback Ollama here
            for key, value in (("llm_provider", "ollama"), ("ollama_url", llm_server.url)):
                answer = http.post(
                    "/vapi/settings/global", json={"key": key, "value": value, "sensitive": False}
                )
                assert answer.status_code == 204, answer.text
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def listing(server: Server) -> dict[str, dict[str, Any]]:
    with server.client() as http:
        answer = http.get("/vapi/flows/not-installed")
    assert answer.status_code == 200, answer.text
    return {flow["name"]: flow for flow in answer.json()}


@pytest.fixture(scope="module")
def tiny_models(server: Server, listing: dict[str, dict[str, Any]]) -> None:
    """Tiny models for every flow that runs here, written by one ``tiny_models`` run (one torch import)."""
    names = [n for n in NAMES if listing[n]["runnable"]]
    models = server.env["MODELS_DIR"]
    cmd = [sys.executable, "-m", "visionatrix.testing.tiny_models", "--out", models]
    cmd += [arg for name in names for arg in ("--flow", name)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=server.env)
    assert done.returncode == 0, done.stderr


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
    assert set(FLUX) <= runnable
    assert "hunyuan_dit" not in runnable and "photomaker_flux1_dev" not in runnable


@pytest.mark.parametrize("name", NAMES)
def test_a_catalog_flow_runs_or_is_refused_with_its_reasons(
    server: Server, listing: dict[str, dict[str, Any]], tiny_models: None, name: str
) -> None:
    raw = (FIXTURE_FLOWS / f"{name}.json").read_bytes()
    flow = listing[name]
    with server.client(timeout=60) as http:
        answer = http.put("/vapi/flows/flow", files={"flow_file": (f"{name}.json", raw, "application/json")})
        if not flow["runnable"]:
            _assert_refused(http, name, flow, answer)
            return
        assert answer.status_code == 200, answer.text
        assert all(m["installed"] for m in answer.json()["models"]), answer.json()["models"]
        assert name in {f["name"] for f in http.get("/vapi/flows/installed").json()}
        if name in FLUX:
            return
        data, files = _required_inputs(answer.json())
        images = _run_to_valid_images(http, name, data, files)
        _assert_size(images, _default_size(answer.json()))


def _assert_refused(http: Any, name: str, flow: dict[str, Any], answer: Any) -> None:
    assert answer.status_code == 400, answer.text
    detail = answer.json()["detail"]
    assert detail.startswith(f"flow '{name}' cannot run on this server: ")
    for reason in flow["unsupported_reasons"]:
        assert reason in detail
    by_name = http.post("/vapi/flows/flow", params={"name": name})
    assert by_name.status_code == 400 and by_name.json()["detail"] == detail
    assert name not in {f["name"] for f in http.get("/vapi/flows/installed").json()}


def _required_inputs(flow: dict[str, Any]) -> tuple[dict[str, str], dict[str, tuple[str, bytes, str]]]:
    """What a task must be given (the prompt, the image); every other input keeps its default."""
    data: dict[str, str] = {"seed": "7"}
    files = {}
    for param in flow["input_params"]:
        if param["optional"]:
            continue
        if param["type"] == "text":
            data[param["name"]] = PROMPT
        elif param["type"] in ("image", "image-mask"):
            files[param["name"]] = ("photo.png", _photo(), "image/png")
    return data, files


def _photo(width: int = 64, height: int = 48) -> bytes:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def _run_to_valid_images(
    http: Any, name: str, data: dict[str, str], files: dict[str, Any]
) -> list[np.ndarray]:
    """Run one task of flow ``name``; every output file is a real image (or text); the images."""
    created = http.put(f"/vapi/tasks/create/{name}", data=data, files=files or None)
    assert created.status_code == 200, created.text
    task = wait_for(created.json()["tasks_ids"][0], http, timeout=900)
    assert task["error"] == "" and task["progress"] == 100.0, task
    images = []
    for output in task["outputs"]:
        for index in range(max(output["batch_size"], 1)):
            params = {"task_id": task["task_id"], "node_id": output["comfy_node_id"], "batch_index": index}
            result = http.get("/vapi/tasks/results", params=params)
            assert result.status_code == 200, result.text
            if output["type"] == "text":
                assert result.content.strip(), "a text result with text in it"
                continue
            assert result.headers["content-type"] == "image/png"
            pixels = np.asarray(Image.open(io.BytesIO(result.content)), dtype=np.float32)
            assert pixels.ndim == 3 and min(pixels.shape[:2]) >= 48
            assert pixels.std() > 0, "an image, not a constant fill"
            images.append(pixels)
    return images


_SIZE = re.compile(r"\((\d+)x(\d+)\)")


def _default_size(flow: dict[str, Any]) -> tuple[int, int] | None:
    """(width, height) the flow's default aspect ratio gives, when it has that input."""
    for param in flow["input_params"]:
        if param["name"] == "aspect_ratio" and (m := _SIZE.search(str(param["default"]))):
            return int(m[1]), int(m[2])
    return None


def _area(choice: str) -> int:
    m = _SIZE.search(choice)
    return int(m[1]) * int(m[2]) if m else 0


def _assert_size(images: list[np.ndarray], size: tuple[int, int] | None) -> None:
    if size is not None:
        assert {(p.shape[1], p.shape[0]) for p in images} == {size}


@pytest.mark.parametrize("name", FAMILY)
def test_a_family_flow_runs_with_other_inputs_than_its_defaults(
    server: Server, listing: dict[str, dict[str, Any]], tiny_models: None, name: str
) -> None:
    """Every input the flow offers set away from its default: another aspect ratio (so size), the
    fewest steps, the other branch of a checkbox (``fast_run``: another sampler and scheduler), the
    other list choice, another strength, two images a batch, another negative prompt."""
    assert listing[name]["runnable"], listing[name]["unsupported_reasons"]
    with server.client(timeout=60) as http:
        installed = http.put(
            "/vapi/flows/flow",
            files={
                "flow_file": (
                    f"{name}.json",
                    (FIXTURE_FLOWS / f"{name}.json").read_bytes(),
                    "application/json",
                )
            },
        )
        assert installed.status_code == 200, installed.text
        flow = installed.json()
        data, files = _required_inputs(flow)
        data["seed"] = "12345"
        size, batch = None, 1
        for param in flow["input_params"]:
            value = _other_value(param)
            if value is not None:
                data[param["name"]] = value
            if param["name"] == "aspect_ratio" and value is not None:
                m = _SIZE.search(value)
                size = (int(m[1]), int(m[2])) if m else None
            if param["name"] == "batch_size" and value is not None:
                batch = int(value)
        if any(p["type"] in ("image", "image-mask") for p in flow["input_params"]):
            files = {k: ("photo.png", _photo(80, 56), "image/png") for k in files}
            size = (80, 56)
        images = _run_to_valid_images(http, name, data, files)
        assert len(images) == batch
        _assert_size(images, size)


def _other_value(param: dict[str, Any]) -> str | None:
    """A valid value for ``param`` other than its default (None: leave it alone)."""
    default = param["default"]
    if param["type"] == "range" and param["min"] is not None:
        if param["name"] == "batch_size":
            return "2"
        # the fewest steps: the cheapest run; otherwise the other end of the range
        low, high = param["min"], param["max"]
        return str(low if default != low else high)
    if param["type"] == "bool":
        return "0" if default else "1"
    if param["type"] == "list":
        others = [key for key in param["options"] if key != default]
        sizes = [m for key in others if (m := _SIZE.search(key))]
        if sizes and len(sizes) == len(others):  # an aspect ratio: the fewest pixels, the cheapest run
            return min(others, key=lambda key: _area(key))
        return others[-1] if others else None
    if param["type"] == "text" and param["optional"]:
        return "blurry, low contrast"
    return None


def test_the_cli_lists_the_catalog_with_why_a_flow_does_not_run(server: Server) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "visionatrix", "flows", "--server", server.url],
        capture_output=True,
        text=True,
        timeout=60,
        env={**server.env, "COLUMNS": "400"},
    )
    assert done.returncode == 0, done.stderr
    rows = {row[0]: row for row in (line.split("\t") for line in done.stdout.splitlines()[1:])}
    assert rows["photomaker_flux1_dev"][3:5] == ["no", "no"]
    assert "node classes this engine does not implement" in rows["photomaker_flux1_dev"][5]
    assert rows["flux1_dev"][4] == "yes"
    assert "remove_background_birefnet" in rows


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
        [sys.executable, "-m", "visionatrix", "install-flow", "ace_step"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**env, "HF_HUB_OFFLINE": "1"},
    )
    assert done.returncode == 1
    assert (
        "error: flow 'ace_step' cannot run on this server: node classes this engine does not" in done.stderr
    )
    assert "sampler 'res_multistep'" in done.stderr
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").rglob("*")), (
        "nothing downloaded"
    )
