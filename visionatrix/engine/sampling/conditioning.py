"""CONDITIONING: what a text encoder hands the sampler, as ComfyUI structures it.

A conditioning is a tuple of ``CondPart`` entries (ComfyUI: a list of ``[cross_attn, {...}]``).
``ConditioningCombine`` concatenates tuples; at each step the sampler averages the denoised
predictions of the entries active at that noise level (``start_percent`` .. ``end_percent`` of
the schedule, ``ConditioningSetTimestepRange``). Tensors stay on the CPU in float32; the sampler
moves them. Torch is only needed to build one, not to import this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import Tensor

LATENT_FACTOR = 8  # pixels per latent cell, each way


@dataclass(frozen=True)
class CondPart:
    """One conditioning entry: the text embedding sequence, the pooled vector, where it applies.

    SDXL's size conditioning (original size, crop, target size) defaults, as in ComfyUI, to the
    latent's size × 8 with no crop: a 1216×832 image is conditioned on 1216×832. A node that sets
    explicit sizes (ComfyUI's ``CLIPTextEncodeSDXL``) fills the fields.
    """

    embeds: Tensor  # (1, 77·k, width) float32, CPU
    pooled: Tensor  # (1, pooled width) float32, CPU
    start_percent: float = 0.0
    end_percent: float = 1.0
    width: int | None = None
    height: int | None = None
    crop_w: int = 0
    crop_h: int = 0
    target_width: int | None = None
    target_height: int | None = None
    # Flux: distilled guidance (FluxGuidance; ``None``: the model's default, 3.5 for Flux.1 dev),
    # reference latents (Kontext's ReferenceLatent, VAE latent space) and the inpainting inputs of
    # InpaintModelConditioning (the masked image's latent and the pixel mask) fill models read
    guidance: float | None = None
    reference_latents: tuple[Tensor, ...] = ()
    concat_latent: Tensor | None = None
    concat_mask: Tensor | None = None

    def time_ids(self, latent_height: int, latent_width: int) -> list[float]:
        """SDXL's six size numbers, height first: original (h, w), crop (top, left), target (h, w)."""
        width = self.width if self.width is not None else latent_width * LATENT_FACTOR
        height = self.height if self.height is not None else latent_height * LATENT_FACTOR
        target_w = self.target_width if self.target_width is not None else width
        target_h = self.target_height if self.target_height is not None else height
        return [float(v) for v in (height, width, self.crop_h, self.crop_w, target_h, target_w)]


Conditioning = tuple[CondPart, ...]
