"""One sampling run, as ComfyUI's ``CFGGuider.sample`` + ``KSAMPLER.sample`` do it, and KSampler's noise.

The latent is moved into the model's latent space (an all-zero latent is left alone, as in
ComfyUI), the starting noise is scaled to the first sigma (``max_denoise`` from pure noise), the
sampler walks the sigmas, and the result goes back to the VAE's latent space on the CPU.

With a denoise mask (a LATENT's ``noise_mask``, inpainting) every model call sees, outside the
mask, the original latent noised to the current sigma, and its prediction there is replaced by
the original (ComfyUI's ``KSamplerX0Inpaint``); a model patched by DifferentialDiffusion first
turns the soft mask into this step's hard one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from visionatrix.engine.sampling.diffusion_model import DiffusionModel
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


def fix_empty_channels(latent: Tensor, channels: int) -> Tensor:
    """An all-zero latent with another channel count repeated to ``channels`` (ComfyUI's
    ``fix_empty_latent_channels``: an SDXL ``EmptyLatentImage`` feeding a Flux model)."""
    if latent.shape[1] != channels and torch.count_nonzero(latent) == 0:
        reps = -(-channels // latent.shape[1])
        return latent.repeat(1, reps, *([1] * (latent.ndim - 2)))[:, :channels]
    return latent


def prepare_mask(mask: Tensor, shape: torch.Size, device: str) -> Tensor:
    """A noise mask (B?, H, W) at the latent's size, one channel per latent channel, per batch row."""
    m = mask.reshape((-1, 1, mask.shape[-2], mask.shape[-1])).float()
    m = torch.nn.functional.interpolate(m, size=tuple(shape[2:]), mode="bilinear")
    if m.shape[1] < shape[1]:
        m = m.repeat((1, shape[1], 1, 1))[:, : shape[1]]
    if m.shape[0] < shape[0]:
        m = m.repeat((-(-shape[0] // m.shape[0]), 1, 1, 1))
    return m[: shape[0]].to(device)


def _inpainting(
    denoise: Callable[[Tensor, Tensor], Tensor],
    model: DiffusionModel,
    mask: Tensor,
    latent: Tensor,
    noise: Tensor,
    sigmas: Tensor,
) -> Callable[[Tensor, Tensor], Tensor]:
    ms = model.sampling

    def call(x: Tensor, sigma: Tensor) -> Tensor:
        step_mask = mask if model.denoise_mask_fn is None else model.denoise_mask_fn(sigma, mask, sigmas)
        keep = 1.0 - step_mask
        per_row = sigma.reshape([sigma.shape[0]] + [1] * (noise.ndim - 1))
        x = x * step_mask + ms.noise_scaling(per_row, noise, latent) * keep
        return denoise(x, sigma) * step_mask + latent * keep

    return call


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
    denoise_mask: Tensor | None = None,
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
    if denoise_mask is not None:
        mask = prepare_mask(denoise_mask, noise.shape, model.device)
        denoiser = _inpainting(denoiser, model, mask, latent, noise, sigmas)
    with torch.inference_mode():
        out = sampler.sample(denoiser, x, sigmas, SolverRun(ms, seed, step))
        out = ms.inverse_noise_scaling(sigmas[-1], out)
        samples = fmt.process_out(out.to(torch.float32)).cpu()
        denoised = fmt.process_out(last[0].to(torch.float32)).cpu() if last else None
    return SampleResult(samples, denoised)
