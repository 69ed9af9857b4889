"""VAE latents <-> the latent space a diffusion model denoises in (ComfyUI's ``latent_formats``).

SDXL scales by 0.13025. Playground v2.5 standardises each channel with published means and
standard deviations, then scales by 0.5 (the values Playground ships in its pipeline config).
Flux's 16-channel latents are shifted by 0.1159, then scaled by 0.3611 (BFL's autoencoder params).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class LatentFormat:
    name: str
    scale_factor: float
    means: tuple[float, ...] | None = None
    stds: tuple[float, ...] | None = None
    shift: float = 0.0
    channels: int = 4

    def _stats(self, like: Tensor) -> tuple[Tensor, Tensor]:
        assert self.means is not None and self.stds is not None
        view = (1, len(self.means), 1, 1)
        mean = torch.tensor(self.means).view(view).to(like.device, like.dtype)
        std = torch.tensor(self.stds).view(view).to(like.device, like.dtype)
        return mean, std

    def process_in(self, latent: Tensor) -> Tensor:
        """VAE latent -> model latent."""
        if self.means is None:
            return (latent - self.shift) * self.scale_factor if self.shift else latent * self.scale_factor
        mean, std = self._stats(latent)
        return (latent - mean) * self.scale_factor / std

    def process_out(self, latent: Tensor) -> Tensor:
        """Model latent -> VAE latent."""
        if self.means is None:
            return latent / self.scale_factor + self.shift if self.shift else latent / self.scale_factor
        mean, std = self._stats(latent)
        return latent * std / self.scale_factor + mean


SDXL = LatentFormat("SDXL", 0.13025)
PLAYGROUND_2_5 = LatentFormat(
    "SDXL_Playground_2_5",
    0.5,
    means=(-1.6574, 1.886, -1.383, 2.5155),
    stds=(8.4927, 5.9022, 6.8617, 5.245),
)
FLUX = LatentFormat("Flux", 0.3611, shift=0.1159, channels=16)
