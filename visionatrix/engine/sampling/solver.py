"""What every sampler gets, and the two step formulas most of them share (k-diffusion's).

A sampler is ``fn(model, x, sigmas, run) -> x``: ``model(x, sigma)`` returns the denoised latent
(``sigma`` has one entry per batch item), ``x`` starts at ``sigmas[0]``'s noise level and the
sampler walks it down the float32 ``sigmas`` to the last one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from visionatrix.engine.sampling.model_sampling import ModelSampling
from visionatrix.engine.sampling.noise import NoiseSampler, default_noise_sampler

Denoiser = Callable[[Tensor, Tensor], Tensor]
StepCallback = Callable[[int, Tensor, Tensor], None]  # (step, x, denoised)


@dataclass
class SolverRun:
    """A run's settings: the seed for noise, the model's sampling, a per-step callback."""

    model_sampling: ModelSampling
    seed: int | None = None
    callback: StepCallback | None = None
    options: dict[str, float] = field(default_factory=dict)

    def step(self, i: int, x: Tensor, denoised: Tensor) -> None:
        if self.callback is not None:
            self.callback(i, x, denoised)

    def noise_sampler(self, x: Tensor) -> NoiseSampler:
        return default_noise_sampler(x, self.seed)


def batch_ones(x: Tensor) -> Tensor:
    return x.new_ones([x.shape[0]])


def to_d(x: Tensor, sigma: Tensor, denoised: Tensor) -> Tensor:
    """The probability-flow ODE's derivative dx/dsigma."""
    return (x - denoised) / sigma.reshape(sigma.shape + (1,) * (x.ndim - sigma.ndim))


def ancestral_step(sigma_from: Tensor, sigma_to: Tensor, eta: float = 1.0) -> tuple[Tensor, Tensor]:
    """(sigma_down, sigma_up): step deterministically down to sigma_down, then add noise of sigma_up."""
    if not eta:
        return sigma_to, torch.zeros_like(sigma_to)
    sigma_up = torch.minimum(
        sigma_to, eta * (sigma_to**2 * (sigma_from**2 - sigma_to**2) / sigma_from**2) ** 0.5
    )
    sigma_down = (sigma_to**2 - sigma_up**2) ** 0.5
    return sigma_down, sigma_up
