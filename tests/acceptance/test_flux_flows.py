"""The Flux catalog flows (issue 13) through one real server and its worker, from their unchanged files.

Each flow installs from the fixture catalog onto tiny models written by ``tiny_models --flow`` in
the published layouts (8-bit transformers and T5, BFL's VAE, LoRAs in kohya, ComfyUI and PEFT
spellings) and runs a task with real inputs to valid images of the size the flow makes. The flows
that ask an LLM to describe the photo (Gemini or Ollama nodes) talk to a loopback server speaking
those protocols. Cost: each flow at its smallest size and step count (about 1 MP, 20 steps).
"""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.support import FIXTURES, Server, wait_for
from visionatrix.testing.llm_server import LLMServer
from visionatrix.testing.remote_vae_server import RemoteVaeServer

pytest.importorskip("torch", reason="running the Flux flows needs the worker extra (torch)")

FLOWS = FIXTURES / "vixflows" / "flows"
pytestmark = pytest.mark.skipif(
    not (FLOWS / "flux1_dev.json").is_file(), reason=f"no fixture flows at {FLOWS}"
)
SMALLEST = "5:8 (768x1216)"  # the smallest of the aspect-ratio choices (934 k pixels)
# issue 13's flows: name -> (form fields, image inputs (name -> kind), (width, height) of the result)
CASES: dict[str, tuple[dict[str, str], dict[str, str], tuple[int, int] | None]] = {
    "flux1_dev": ({"prompt": "a cat", "aspect_ratio": SMALLEST, "steps_count": "20"}, {}, (768, 1216)),
    "flux1_schnell": ({"prompt": "a cat", "aspect_ratio": SMALLEST}, {}, (768, 1216)),
    "sketch_pencil": (
        {"prompt": "a cat", "aspect_ratio": SMALLEST, "pencil_lora_strength": "0.6"},
        {},
        (768, 1216),
    ),
    "animal_clothing": (
        {"aspect_ratio": SMALLEST},
        {"person_image": "photo", "image_of_clothes": "photo"},
        (768, 1216),
    ),
    "flux1_kontext": (
        {"prompt": "make it blue", "steps_count": "20", "batch_size": "1"},
        {"input_image": "photo"},
        (1024, 1024),
    ),
    "to_ghibli": ({}, {"src_image": "photo"}, None),
    "restore_old_photo": ({"vision_provider": "0"}, {"src_image": "photo"}, None),
    "flux1_dev_inpaint": (
        {"prompt": "a hat", "denoise": "0.8"},
        {"source_image": "photo", "mask_redraw": "mask"},
        (96, 64),
    ),
    "flux1_schnell_inpaint": (
        {"prompt": "a hat"},
        {"source_image": "photo", "mask_redraw": "mask", "mask_context": "context"},
        (96, 64),
    ),
    "colorful_xl_inpaint": (
        {"prompt": "a hat", "steps_count": "30"},
        {"source_image": "photo", "mask_redraw": "mask"},
        (96, 64),
    ),
    "flux1_extend": (
        {"extend_width": "64", "extend_height": "128", "steps_count": "20"},
        {"source_image": "photo"},
        (1024, 768),
    ),
}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("flux_models")
    cmd = [sys.executable, "-m", "visionatrix.testing.tiny_models", "--out", str(folder)]
    cmd += [arg for name in CASES for arg in ("--flow", name)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "skipped" not in done.stdout, done.stdout  # every file these flows read has a tiny twin
    return folder


@pytest.fixture(scope="module")
def remote_vae(models: Path) -> Iterator[RemoteVaeServer]:
    """A loopback remote-VAE endpoint that decodes with the same tiny Flux VAE."""
    import torch

    from visionatrix.engine.nets.flux_vae import load_vae

    vae, _ = load_vae(models / "vae" / "ae.safetensors", "cpu", torch.float32)

    def decode(latent: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return vae.decode(latent).sample

    with_server = RemoteVaeServer(decode)
    with_server.start()
    yield with_server
    with_server.stop()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, models: Path, llm_server: LLMServer, remote_vae: RemoteVaeServer
) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("flux")
    vix = Server(
        workdir,
        f"sqlite:///{workdir / 'vix.db'}",
        MODELS_DIR=str(models),
        HF_HUB_OFFLINE="1",
        VIX_REMOTE_VAE_FLUX=remote_vae.url + "/",
    )
    vix.start()
    try:
        with vix.client() as http:
            for key, value in {
                "ollama_url": llm_server.url,
                "ollama_vision_model": "llava:13b",
                "ollama_llm_model": "gemma3:12b-it-qat",
                "google_api_key": llm_server.gemini_key,
                "gemini_url": llm_server.url,
                "gemini_model": "gemini-2.5-flash",
            }.items():
                answer = http.post(
                    "/vapi/settings/global", json={"key": key, "value": value, "sensitive": False}
                )
                assert answer.status_code == 204, answer.text
        yield vix
    finally:
        vix.stop()


def _png(kind: str) -> bytes:
    """A 96x64 photo (noise with a gradient), or a mask / context mask: white where to work."""
    rng = np.random.default_rng(3)
    if kind == "photo":
        ramp = np.linspace(0, 255, 96)[None, :, None]
        pixels = (rng.integers(0, 128, size=(64, 96, 3)) + ramp / 2).astype(np.uint8)
    else:
        pixels = np.zeros((64, 96, 3), np.uint8)
        box = (slice(20, 40), slice(30, 60)) if kind == "mask" else (slice(5, 15), slice(5, 20))
        pixels[box] = 255
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def _install(http: httpx.Client, name: str) -> dict[str, Any]:
    raw = (FLOWS / f"{name}.json").read_bytes()
    answer = http.put("/vapi/flows/flow", files={"flow_file": (f"{name}.json", raw, "application/json")})
    assert answer.status_code == 200, answer.text
    assert all(m["installed"] for m in answer.json()["models"]), answer.json()["models"]
    return answer.json()


def _images(http: httpx.Client, task: dict[str, Any]) -> list[np.ndarray]:
    images = []
    for output in task["outputs"]:
        for index in range(max(output["batch_size"], 1)):
            params = {"task_id": task["task_id"], "node_id": output["comfy_node_id"], "batch_index": index}
            result = http.get("/vapi/tasks/results", params=params)
            assert result.status_code == 200 and result.headers["content-type"] == "image/png", result.text
            images.append(np.asarray(Image.open(io.BytesIO(result.content)).convert("RGB"), dtype=np.float32))
    return images


@pytest.mark.parametrize("name", list(CASES))
def test_a_flux_flow_runs_from_its_unchanged_file(server: Server, llm_server: LLMServer, name: str) -> None:
    fields, files, size = CASES[name]
    llm_server.reset()
    with server.client(timeout=60) as http:
        flow = _install(http, name)
        names = {p["name"] for p in flow["input_params"]}
        assert set(fields) <= names and set(files) <= names, names
        upload = {field: (f"{field}.png", _png(kind), "image/png") for field, kind in files.items()}
        created = http.put(f"/vapi/tasks/create/{name}", data={"seed": "11", **fields}, files=upload or None)
        assert created.status_code == 200, created.text
        task = wait_for(created.json()["tasks_ids"][0], http, timeout=900)
        assert task["error"] == "" and task["progress"] == 100.0, task
        images = _images(http, task)
    assert images
    for pixels in images:
        assert pixels.std() > 0, "an image, not a constant fill"
        if size is not None:
            assert (pixels.shape[1], pixels.shape[0]) == size
        else:  # rescaled to about one megapixel, in multiples of 8 (what VAEEncode keeps)
            assert 0.8e6 < pixels.shape[0] * pixels.shape[1] < 1.2e6 and pixels.shape[0] % 8 == 0
    if name in ("to_ghibli", "restore_old_photo", "animal_clothing"):
        assert llm_server.seen, "the flow asked the LLM to describe the photo"


def test_listed_flows_decode_on_the_remote_vae(server: Server, remote_vae: RemoteVaeServer) -> None:
    """``remote_vae_flows`` names flux1_schnell: its task's switch turns on at claim, the worker sends
    the latent to the endpoint ``VIX_REMOTE_VAE_FLUX`` names and saves what comes back."""
    fields, _, size = CASES["flux1_schnell"]
    with server.client(timeout=60) as http:
        _install(http, "flux1_schnell")
        setting = {"key": "remote_vae_flows", "value": '["flux1_schnell"]', "sensitive": False}
        assert http.post("/vapi/settings/global", json=setting).status_code == 204
        try:
            before = len(remote_vae.requests)
            created = http.put("/vapi/tasks/create/flux1_schnell", data={"seed": "5", **fields})
            task = wait_for(created.json()["tasks_ids"][0], http, timeout=900)
            assert task["error"] == "", task
            images = _images(http, task)
        finally:
            http.post("/vapi/settings/global", json={**setting, "value": "[]"})
    assert [(p.shape[1], p.shape[0]) for p in images] == [size] and images[0].std() > 0
    (request,) = remote_vae.requests[before:]
    assert request["query"]["shape"] == ["1", "16", str(size[1] // 8), str(size[0] // 8)]
