"""MODEL: a denoising network with the sampling rules it was trained for.

``DiffusionModel`` is immutable: nodes that change how a model samples (``ModelSamplingContinuousEDM``)
return a copy with another ``sampling`` / ``latent_format``; the network itself is shared. A node
that patches weights (LoRA) should do the same: wrap ``unet`` (or give it patched weights) in a
copy, never mutate the cached one, since loaded checkpoints are shared between tasks.

The network is a diffusers SDXL UNet, or an object with ``apply_batch(x, timestep, batch)`` (the
Flux transformer, ``nets/flux_net``) which may also turn each conditioning entry into its own
model inputs once per run (``condition(part, noise_shape, latent_format)``: reference latents,
inpainting channels, guidance), handed back per entry in ``UNetBatch.extras``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from visionatrix.engine.sampling.latent_formats import LatentFormat
from visionatrix.engine.sampling.model_sampling import ModelSampling


@dataclass(frozen=True)
class UNetBatch:
    """The conditioning of one UNet call, one row per latent in the batch."""

    embeds: Tensor  # (N, L, C) on the model's device and dtype
    pooled: Tensor  # (N, P)
    time_ids: Tensor  # (N, 6)
    extras: tuple[Any, ...] = ()  # per conditioning entry (N / len(extras) rows each): network-specific


@dataclass(frozen=True)
class DiffusionModel:
    """A denoising network (an SDXL UNet, the Flux transformer) plus its sampling and latent format."""

    unet: Any
    sampling: ModelSampling
    latent_format: LatentFormat
    device: str
    dtype: torch.dtype
    # what the weights are (the checkpoint's cache key, then each patch applied): a cache key for
    # patched copies; "" when unknown, and then patched copies are not cached
    identity: str = ""
    # DifferentialDiffusion: (sigma, denoise_mask, sigmas) -> the mask this step uses
    denoise_mask_fn: Callable[[Tensor, Tensor, Tensor], Tensor] | None = None

    def denoise(self, x: Tensor, sigma: Tensor, batch: UNetBatch) -> Tensor:
        """The clean latent predicted at ``x`` (noise level ``sigma`` per row), as float32.

        As ComfyUI's ``apply_model``: the input is scaled to unit variance, the timestep is the
        model sampling's (an integer for discrete models), the output becomes a denoised latent.
        """
        ms = self.sampling
        x_in = ms.calculate_input(sigma, x).to(self.dtype)
        t = ms.timestep(sigma).float()
        apply = getattr(self.unet, "apply_batch", None)
        if apply is not None:
            return ms.calculate_denoised(sigma, apply(x_in, t, batch).float(), x)
        out = self.unet(
            x_in,
            t,
            encoder_hidden_states=batch.embeds,
            added_cond_kwargs={"text_embeds": batch.pooled, "time_ids": batch.time_ids},
        ).sample
        return ms.calculate_denoised(sigma, out.float(), x)
