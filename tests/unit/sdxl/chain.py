"""The SDXL chain as the Visionatrix flows wire it, run node by node in-process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from visionatrix.engine.context import NodeContext, RunEnv
from visionatrix.engine.registry import lookup
from visionatrix.models.cache import ModelStore

CKPT = "tiny_sdxl.safetensors"
PLAYGROUND = "tiny_playground.safetensors"


def make_ctx(store: ModelStore, tmp: Path, progress: list[tuple[str, float]], precision: str) -> NodeContext:
    env = RunEnv(
        models=store,
        input_dir=tmp,
        output_dir=tmp,
        tmp_dir=tmp,
        precision=precision,
        on_progress=lambda node_id, fraction: progress.append((node_id, fraction)),
    )
    return NodeContext(env, "3", "test")


def run(class_type: str, ctx: NodeContext, **inputs: Any) -> tuple[Any, ...]:
    """Run one node; its progress reports carry its class name as the node id."""
    cls = lookup(class_type)
    assert cls is not None, class_type
    return cls().run(NodeContext(ctx.env, class_type, class_type), **inputs)


def generate(
    ctx: NodeContext,
    *,
    seed: int = 1,
    size: int = 64,
    steps: int = 4,
    sampler: str = "euler",
    scheduler: str = "sgm_uniform",
    cfg: float = 1.0,
    negative: str = "ugly",
    denoise: float = 1.0,
    batch: int = 1,
) -> np.ndarray:
    """The sdxl_lighting flow's chain: loader, 2 × CLIPTextEncode, EmptyLatentImage, KSampler, VAEDecode."""
    model, clip, vae = run("CheckpointLoaderSimple", ctx, ckpt_name=CKPT)
    (positive,) = run("CLIPTextEncode", ctx, text="a photo of a cat", clip=clip)
    (negative_cond,) = run("CLIPTextEncode", ctx, text=negative, clip=clip)
    (latent,) = run("EmptyLatentImage", ctx, width=size, height=size, batch_size=batch)
    (samples,) = run(
        "KSampler",
        ctx,
        model=model,
        seed=seed,
        steps=steps,
        cfg=cfg,
        sampler_name=sampler,
        scheduler=scheduler,
        positive=positive,
        negative=negative_cond,
        latent_image=latent,
        denoise=denoise,
    )
    (image,) = run("VAEDecode", ctx, samples=samples, vae=vae)
    return image


def assert_image(image: np.ndarray, size: int, batch: int = 1) -> None:
    assert image.shape == (batch, size, size, 3) and image.dtype == np.float32
    assert np.isfinite(image).all() and image.min() >= 0.0 and image.max() <= 1.0
    assert image.std() > 0.01  # an image, not a constant
