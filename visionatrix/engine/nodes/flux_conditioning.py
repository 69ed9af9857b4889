"""Flux conditioning, latent and model-sampling nodes with ComfyUI's names, inputs and rules.

    CLIPTextEncodeFlux(clip, clip_l, t5xxl, guidance)         -> (CONDITIONING,)  separate prompts
    FluxGuidance(conditioning, guidance)                      -> (CONDITIONING,)  distilled guidance
    ReferenceLatent(conditioning, latent?)                    -> (CONDITIONING,)  Kontext's image to edit
    FluxKontextImageScale(image)                              -> (IMAGE,)   nearest Kontext resolution
    EmptySD3LatentImage(width, height, batch_size)            -> (LATENT,)  16 channels
    ModelSamplingFlux(model, max_shift, base_shift, width, height) -> (MODEL,)  resolution shift

(``comfy_extras/nodes_flux.py``, ``nodes_edit_model.py``, ``nodes_sd3.py``, ``nodes_model_advanced.py``.)
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from visionatrix.engine.context import NodeContext
from visionatrix.engine.registry import node
from visionatrix.errors import InvalidInput

if TYPE_CHECKING:
    from visionatrix.engine.nets.flux_text import FluxClip
    from visionatrix.engine.sampling.conditioning import Conditioning
    from visionatrix.engine.sampling.diffusion_model import DiffusionModel

LATENT_CHANNELS = 16
MAX_GUIDANCE = 100.0
# Flux Kontext's training resolutions (BFL), as ComfyUI lists them: (width, height)
KONTEXT_RESOLUTIONS = (
    (672, 1568), (688, 1504), (720, 1456), (752, 1392), (800, 1328), (832, 1248), (880, 1184),
    (944, 1104), (1024, 1024), (1104, 944), (1184, 880), (1248, 832), (1328, 800), (1392, 752),
    (1456, 720), (1504, 688), (1568, 672),
)  # fmt: skip


def _guidance(name: str, value: Any) -> float:
    g = float(value)
    if not (math.isfinite(g) and 0.0 <= g <= MAX_GUIDANCE):
        raise InvalidInput(f"{name}: guidance must be in [0, {MAX_GUIDANCE:g}], got {value!r}")
    return g


@node("CLIPTextEncodeFlux")
class CLIPTextEncodeFlux:
    def run(
        self, ctx: NodeContext, clip: FluxClip, clip_l: str = "", t5xxl: str = "", guidance: float = 3.5
    ) -> tuple[Conditioning]:
        from visionatrix.engine.sampling.conditioning import CondPart

        if not hasattr(clip, "encode"):
            raise InvalidInput("CLIPTextEncodeFlux needs a Flux CLIP (DualCLIPLoader type flux)")
        g = _guidance("CLIPTextEncodeFlux", guidance)
        states, pooled = clip.encode(str(clip_l), str(t5xxl), ctx.check_cancel)
        return ((CondPart(states, pooled, guidance=g),),)


@node("FluxGuidance")
class FluxGuidance:
    def run(self, ctx: NodeContext, conditioning: Conditioning, guidance: float = 3.5) -> tuple[Conditioning]:
        g = _guidance("FluxGuidance", guidance)
        return (tuple(dataclasses.replace(p, guidance=g) for p in conditioning),)


@node("ReferenceLatent")
class ReferenceLatent:
    def run(
        self, ctx: NodeContext, conditioning: Conditioning, latent: dict[str, Any] | None = None
    ) -> tuple[Conditioning]:
        if latent is None:
            return (conditioning,)
        samples = latent["samples"]
        return (
            tuple(
                dataclasses.replace(p, reference_latents=(*p.reference_latents, samples))
                for p in conditioning
            ),
        )


@node("FluxKontextImageScale")
class FluxKontextImageScale:
    """Resizes (Lanczos, centre-cropped) to the Kontext resolution of the nearest aspect ratio."""

    def run(self, ctx: NodeContext, image: Any) -> tuple[np.ndarray]:
        from visionatrix.engine.nodes.image_io import as_image_batch
        from visionatrix.engine.nodes.image_ops import center_crop, resize

        batch = as_image_batch(image)
        aspect = batch.shape[2] / batch.shape[1]
        _, width, height = min((abs(aspect - w / h), w, h) for w, h in KONTEXT_RESOLUTIONS)
        return (resize(center_crop(batch, width, height), width, height, "lanczos"),)


@node("EmptySD3LatentImage")
class EmptySD3LatentImage:
    def run(self, ctx: NodeContext, width: int, height: int, batch_size: int = 1) -> tuple[dict[str, Any]]:
        import torch

        for name, value, least, most in (
            ("width", width, 16, 16384),
            ("height", height, 16, 16384),
            ("batch_size", batch_size, 1, 4096),
        ):
            if not least <= int(value) <= most:
                raise InvalidInput(f"EmptySD3LatentImage: {name} must be in {least}..{most}, got {value}")
        shape = (int(batch_size), LATENT_CHANNELS, int(height) // 8, int(width) // 8)
        return ({"samples": torch.zeros(shape)},)


@node("ModelSamplingFlux")
class ModelSamplingFlux:
    """Flux's shift grows linearly with the image's token count: ``base_shift`` at 256 tokens
    (512²), ``max_shift`` at 4096 (1024²)."""

    def run(
        self,
        ctx: NodeContext,
        model: DiffusionModel,
        max_shift: float = 1.15,
        base_shift: float = 0.5,
        width: int = 1024,
        height: int = 1024,
    ) -> tuple[DiffusionModel]:
        from visionatrix.engine.sampling import model_sampling

        if int(width) < 16 or int(height) < 16:
            raise InvalidInput(
                f"ModelSamplingFlux: width and height must be at least 16, got {width}x{height}"
            )
        return (
            dataclasses.replace(
                model, sampling=model_sampling.flux(flux_shift(max_shift, base_shift, width, height))
            ),
        )


def flux_shift(max_shift: float, base_shift: float, width: int, height: int) -> float:
    """The ``mu`` of ``time_shift`` for an image of ``width`` x ``height`` (BFL's ``get_lin_function``)."""
    x1, x2 = 256, 4096
    slope = (float(max_shift) - float(base_shift)) / (x2 - x1)
    intercept = float(base_shift) - slope * x1
    return (int(width) * int(height) / (8 * 8 * 2 * 2)) * slope + intercept
