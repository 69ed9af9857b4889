"""At cfg 1 the KSamplers never encode their negative prompt (the guider would skip it anyway):
the executor leaves that CLIPTextEncode out, and the image is the one the full chain gives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.unit.sdxl.chain import CKPT, generate, make_ctx
from visionatrix.engine.executor import run_graph
from visionatrix.models.cache import ModelStore


def _graph(sampler: str, cfg: float) -> dict[str, Any]:
    sampling: dict[str, Any] = {
        "model": ["4", 0],
        "cfg": cfg,
        "sampler_name": "euler",
        "scheduler": "sgm_uniform",
        "positive": ["6", 0],
        "negative": ["7", 0],
        "latent_image": ["5", 0],
        "steps": 4,
    }
    if sampler == "KSampler":
        sampling |= {"seed": 1, "denoise": 1.0}
    else:
        sampling |= {"noise_seed": 1, "add_noise": "enable", "start_at_step": 0, "end_at_step": 10000}
    return {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": CKPT}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a photo of a cat", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "ugly", "clip": ["4", 1]}},
        "3": {"class_type": sampler, "inputs": sampling},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0]}},
    }


@pytest.mark.parametrize("sampler", ["KSampler", "KSamplerAdvanced"])
def test_cfg_1_skips_the_negative_encode_and_changes_no_pixel(
    sampler: str, store: ModelStore, tmp_path: Path
) -> None:
    progress: list[tuple[str, float]] = []
    ctx = make_ctx(store, tmp_path, progress, "float32")
    outputs = run_graph(_graph(sampler, 1.0), ctx.env)
    ran = {node_id for node_id, _ in progress}
    assert "7" not in ran and {"6", "3", "8", "9"} <= ran
    from PIL import Image

    with Image.open(outputs["9"][0]) as saved:
        got = np.asarray(saved)
    expected = generate(ctx, seed=1, size=64, steps=4, cfg=1.0)[0]  # the chain, negative encoded
    np.testing.assert_array_equal(got, np.rint(np.clip(expected, 0, 1) * 255).astype(np.uint8))


def test_any_other_cfg_encodes_the_negative(store: ModelStore, tmp_path: Path) -> None:
    progress: list[tuple[str, float]] = []
    ctx = make_ctx(store, tmp_path, progress, "float32")
    run_graph(_graph("KSampler", 2.0), ctx.env)
    assert "7" in {node_id for node_id, _ in progress}
