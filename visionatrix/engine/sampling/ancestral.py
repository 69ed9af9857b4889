"""Ancestral samplers: each step goes below the next noise level and adds fresh noise back up.

euler_ancestral, dpm_2_ancestral, dpmpp_2s_ancestral (eta 1), lcm (denoise fully, re-noise to the
next sigma) and ddpm (DDPM's posterior step). Their noise comes from ``run.noise_sampler``: a fresh
generator seeded with the task seed on the latent's device, as ComfyUI draws it.
"""

from __future__ import annotations

import torch
from torch import Tensor

from visionatrix.engine.sampling.solver import Denoiser, SolverRun, ancestral_step, batch_ones, to_d


def sample_euler_ancestral(model: Denoiser, x: Tensor, sigmas: Tensor, run: SolverRun) -> Tensor:
    noise = run.noise_sampler(x)
    s_in = batch_ones(x)
    for i in range(len(sigmas) - 1):
        sigma = sigmas[i]
        denoised = model(x, sigma * s_in)
        sigma_down, sigma_up = ancestral_step(sigma, sigmas[i + 1])
        run.step(i, x, denoised)
        if sigma_down == 0:
            x = denoised
        else:
            d = to_d(x, sigma, denoised)
            x = x + d * (sigma_down - sigma) + noise(sigma, sigmas[i + 1]) * sigma_up
    return x


def sample_dpm_2_ancestral(model: Denoiser, x: Tensor, sigmas: Tensor, run: SolverRun) -> Tensor:
    noise = run.noise_sampler(x)
    s_in = batch_ones(x)
    for i in range(len(sigmas) - 1):
        sigma = sigmas[i]
        denoised = model(x, sigma * s_in)
        sigma_down, sigma_up = ancestral_step(sigma, sigmas[i + 1])
        run.step(i, x, denoised)
        d = to_d(x, sigma, denoised)
        if sigma_down == 0:
            x = x + d * (sigma_down - sigma)
            continue
        sigma_mid = sigma.log().lerp(sigma_down.log(), 0.5).exp()
        x_2 = x + d * (sigma_mid - sigma)
        d_2 = to_d(x_2, sigma_mid, model(x_2, sigma_mid * s_in))
        x = x + d_2 * (sigma_down - sigma)
        x = x + noise(sigma, sigmas[i + 1]) * sigma_up
    return x


def sample_dpmpp_2s_ancestral(model: Denoiser, x: Tensor, sigmas: Tensor, run: SolverRun) -> Tensor:
    noise = run.noise_sampler(x)
    s_in = batch_ones(x)
    for i in range(len(sigmas) - 1):
        sigma = sigmas[i]
        denoised = model(x, sigma * s_in)
        sigma_down, sigma_up = ancestral_step(sigma, sigmas[i + 1])
        run.step(i, x, denoised)
        if sigma_down == 0:
            x = x + to_d(x, sigma, denoised) * (sigma_down - sigma)
        else:
            # DPM-Solver++(2S): a half step in log sigma, then the full step from the midpoint's x0
            t, t_next = sigma.log().neg(), sigma_down.log().neg()
            h = t_next - t
            s = t + 0.5 * h
            x_2 = (s.neg().exp() / t.neg().exp()) * x - (-h * 0.5).expm1() * denoised
            denoised_2 = model(x_2, s.neg().exp() * s_in)
            x = (t_next.neg().exp() / t.neg().exp()) * x - (-h).expm1() * denoised_2
        if sigmas[i + 1] > 0:
            x = x + noise(sigma, sigmas[i + 1]) * sigma_up
    return x


def sample_lcm(model: Denoiser, x: Tensor, sigmas: Tensor, run: SolverRun) -> Tensor:
    noise = run.noise_sampler(x)
    s_in = batch_ones(x)
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * s_in)
        run.step(i, x, denoised)
        x = denoised
        if sigmas[i + 1] > 0:
            x = run.model_sampling.noise_scaling(sigmas[i + 1], noise(sigmas[i], sigmas[i + 1]), x)
    return x


def _ddpm_step(x: Tensor, sigma: Tensor, sigma_prev: Tensor, eps: Tensor, noise: Tensor | None) -> Tensor:
    alpha_cumprod = 1 / ((sigma * sigma) + 1)
    alpha_cumprod_prev = 1 / ((sigma_prev * sigma_prev) + 1)
    alpha = alpha_cumprod / alpha_cumprod_prev
    mu = (1.0 / alpha).sqrt() * (x - (1 - alpha) * eps / (1 - alpha_cumprod).sqrt())
    if noise is not None:
        mu += ((1 - alpha) * (1.0 - alpha_cumprod_prev) / (1.0 - alpha_cumprod)).sqrt() * noise
    return mu


def sample_ddpm(model: Denoiser, x: Tensor, sigmas: Tensor, run: SolverRun) -> Tensor:
    noise = run.noise_sampler(x)
    s_in = batch_ones(x)
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = model(x, sigma * s_in)
        run.step(i, x, denoised)
        fresh = noise(sigma, sigma_next) if sigma_next > 0 else None
        x = _ddpm_step(x / torch.sqrt(1.0 + sigma**2.0), sigma, sigma_next, (x - denoised) / sigma, fresh)
        if sigma_next != 0:
            x *= torch.sqrt(1.0 + sigma_next**2.0)
    return x
