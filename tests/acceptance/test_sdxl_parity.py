"""Same seed, same image: through a real server and worker, on the tiny SDXL checkpoint.

The Visionatrix ``sdxl_lighting`` flow (only its image size changed, and its name) runs as tasks:
- the size conditioning follows the image size: the server's image at 96×64 equals an in-process
  run whose conditioning says 96×64 explicitly, and differs from one conditioned on ComfyUI's
  old default 768×768;
- a weighted prompt gives another image than the same words unweighted, and ``(word:1.0)`` gives
  exactly the image of ``word``.
"""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.support import FIXTURES, Server, wait_for

torch = pytest.importorskip("torch", reason="the model flows need the worker extra (torch)")

FLOW = FIXTURES / "vixflows" / "flows" / "sdxl_lighting.json"
pytestmark = pytest.mark.skipif(not FLOW.is_file(), reason=f"fixture flow not found at {FLOW}")
CKPT = "sdxl_lightning_4step.safetensors"
SEED = "5"


def _flow(width: int, height: int) -> dict[str, Any]:
    graph = copy.deepcopy(json.loads(FLOW.read_text()))
    graph["5"]["inputs"].update(width=width, height=height)
    graph["19"]["inputs"]["name"] = f"sdxl_parity_{width}x{height}"
    return graph


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from visionatrix.testing.tiny_sdxl import write_tiny_sdxl_checkpoint

    out = tmp_path_factory.mktemp("models")
    for index, name in enumerate(("sdxl_lightning_4step.safetensors", "sdxl_lightning_8step.safetensors")):
        write_tiny_sdxl_checkpoint(out / "checkpoints" / name, seed=index)
    return out


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[Server]:
    work = tmp_path_factory.mktemp("server")
    server = Server(work, f"sqlite:///{work / 'vix.db'}", MODELS_DIR=str(models_dir), VIX_PRECISION="float32")
    server.start()
    try:
        for size in ((64, 64), (96, 64)):
            server.install(_flow(*size))
        yield server
    finally:
        server.stop()


def _image(server: Server, flow: str, prompt: str) -> np.ndarray:
    with server.client(timeout=120) as http:
        data = {"prompt": prompt, "seed": SEED, "steps_number": "4 steps"}
        created = http.put(f"/vapi/tasks/create/{flow}", data=data)
        assert created.status_code == 200, created.text
        task = wait_for(created.json()["tasks_ids"][0], http, timeout=300)
        assert task["error"] == "", task["error"]
        node = task["outputs"][0]["comfy_node_id"]
        png = http.get("/vapi/tasks/results", params={"task_id": task["task_id"], "node_id": node})
    assert png.status_code == 200
    return np.asarray(Image.open(io.BytesIO(png.content)).convert("RGB"), dtype=np.int16)


def test_weighted_prompts_change_the_image_and_weight_one_does_not(server: Server) -> None:
    plain = _image(server, "sdxl_parity_64x64", "a photo of a cat")
    assert np.array_equal(_image(server, "sdxl_parity_64x64", "a photo of a (cat:1.0)"), plain)
    # (the tiny random UNet listens to its text only faintly: any change shows the weights arrive)
    assert not np.array_equal(_image(server, "sdxl_parity_64x64", "a photo of a (cat:1.6)"), plain)
    assert not np.array_equal(_image(server, "sdxl_parity_64x64", "a photo of a ((cat))"), plain)


def test_size_conditioning_follows_the_image_size(server: Server, models_dir: Path, tmp_path: Path) -> None:
    served = _image(server, "sdxl_parity_96x64", "a photo of a cat")
    assert served.shape == (64, 96, 3)
    as_sized = _in_process(models_dir, tmp_path, width=96, height=64)
    as_768 = _in_process(models_dir, tmp_path, width=768, height=768)
    assert np.abs(served - as_sized).max() <= 1  # the same computation in another process
    assert np.abs(served - as_768).max() > 1  # the size numbers reach the UNet


def _in_process(models_dir: Path, tmp_path: Path, width: int, height: int) -> np.ndarray:
    """The flow's chain run here, with the conditioning's size set explicitly."""
    import dataclasses

    from visionatrix.engine.context import NodeContext, RunEnv
    from visionatrix.engine.registry import lookup
    from visionatrix.models.cache import ModelStore

    env = RunEnv(models=ModelStore(models_dir), input_dir=tmp_path, output_dir=tmp_path, tmp_dir=tmp_path)
    env.precision = "float32"

    def run(class_type: str, **inputs: Any) -> tuple[Any, ...]:
        node = lookup(class_type)
        assert node is not None
        return node().run(NodeContext(env, class_type, class_type), **inputs)  # type: ignore[no-any-return]

    model, clip, vae = run("CheckpointLoaderSimple", ckpt_name=CKPT)
    (positive,) = run("CLIPTextEncode", text="a photo of a cat", clip=clip)
    (negative,) = run("CLIPTextEncode", text="ugly", clip=clip)
    sized = tuple(dataclasses.replace(p, width=width, height=height) for p in positive)
    (latent,) = run("EmptyLatentImage", width=96, height=64, batch_size=1)
    (samples,) = run(
        "KSampler", model=model, seed=int(SEED), steps=4, cfg=1, sampler_name="euler",
        scheduler="sgm_uniform", positive=sized, negative=negative, latent_image=latent, denoise=1,
    )  # fmt: skip
    (image,) = run("VAEDecode", samples=samples, vae=vae)
    return np.clip(255.0 * image[0], 0, 255).astype(np.uint8).astype(np.int16)
