"""One sampling run, as ComfyUI's ``CFGGuider.sample`` + ``KSAMPLER.sample`` do it, and KSampler's noise.

The latent is moved into the model's latent space (an all-zero latent is left alone, as in
ComfyUI), the starting noise is scaled to the first sigma (``max_denoise`` from pure noise), the
sampler walks the sigmas, and the result goes back to the VAE's latent space on the CPU.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from visionatrix.engine.sampling.guidance import Guider
from visionatrix.engine.sampling.noise import prepare_noise
from visionatrix.engine.sampling.samplers import Sampler
from visionatrix.engine.sampling.solver import SolverRun

Progress = Callable[[int, int], None]  # (steps done, total)


@dataclass(frozen=True)
class SampleResult:
    samples: Tensor  # VAE latent space, CPU float32
    denoised: Tensor | None  # the last step's clean prediction, VAE latent space (SamplerCustom's 2nd output)


def starting_noise(latent: Tensor, seed: int | None) -> Tensor:
    """ComfyUI's RandomNoise (a seed) or DisableNoise (``None``): zeros."""
    if seed is None:
        return torch.zeros(latent.shape, dtype=latent.dtype, layout=latent.layout, device="cpu")
    return prepare_noise(latent, seed)


def sample(
    guider: Guider,
    noise: Tensor,
    latent_image: Tensor,
    sampler: Sampler,
    sigmas: Tensor,
    seed: int | None,
    *,
    on_step: Progress | None = None,
    check_cancel: Callable[[], None] = lambda: None,
) -> SampleResult:
    if sigmas.shape[-1] == 0:
        return SampleResult(latent_image, None)
    model = guider.model
    ms, fmt = model.sampling, model.latent_format
    latent = latent_image.to(model.device, torch.float32)
    if torch.count_nonzero(latent) > 0:  # an empty latent stays 0 (not shifted by the format's means)
        latent = fmt.process_in(latent)
    noise = noise.to(model.device, torch.float32)
    sigmas = sigmas.to(model.device)
    total = len(sigmas) - 1
    last: list[Tensor] = []

    def step(i: int, x: Tensor, denoised: Tensor) -> None:
        last[:] = [denoised]
        if on_step:
            on_step(i, total)

    x = ms.noise_scaling(sigmas[0], noise, latent, ms.is_max_denoise(sigmas))
    denoiser = guider.denoiser(noise.shape, check_cancel)
    with torch.inference_mode():
        out = sampler.sample(denoiser, x, sigmas, SolverRun(ms, seed, step))
        samples = fmt.process_out(out.to(torch.float32)).cpu()
        denoised = fmt.process_out(last[0].to(torch.float32)).cpu() if last else None
    return SampleResult(samples, denoised)
