"""MODEL: a denoising network with the sampling rules it was trained for.

``DiffusionModel`` is immutable: nodes that change how a model samples (``ModelSamplingContinuousEDM``)
return a copy with another ``sampling`` / ``latent_format``; the network itself is shared. A node
that patches weights (LoRA) should do the same: wrap ``unet`` (or give it patched weights) in a
copy, never mutate the cached one, since loaded checkpoints are shared between tasks.
"""

from __future__ import annotations

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


@dataclass(frozen=True)
class DiffusionModel:
    """An SDXL-architecture UNet (diffusers ``UNet2DConditionModel``) plus its sampling and latent format."""

    unet: Any
    sampling: ModelSampling
    latent_format: LatentFormat
    device: str
    dtype: torch.dtype
    # what the weights are (the checkpoint's cache key, then each patch applied): a cache key for
    # patched copies; "" when unknown, and then patched copies are not cached
    identity: str = ""

    def denoise(self, x: Tensor, sigma: Tensor, batch: UNetBatch) -> Tensor:
        """The clean latent predicted at ``x`` (noise level ``sigma`` per row), as float32.

        As ComfyUI's ``apply_model``: the input is scaled to unit variance, the timestep is the
        model sampling's (an integer for discrete models), the output becomes a denoised latent.
        """
        ms = self.sampling
        x_in = ms.calculate_input(sigma, x).to(self.dtype)
        t = ms.timestep(sigma).float()
        out = self.unet(
            x_in,
            t,
            encoder_hidden_states=batch.embeds,
            added_cond_kwargs={"text_embeds": batch.pooled, "time_ids": batch.time_ids},
        ).sample
        return ms.calculate_denoised(sigma, out.float(), x)
