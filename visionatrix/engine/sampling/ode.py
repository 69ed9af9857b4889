"""Deterministic samplers: they solve the probability-flow ODE (k-diffusion's, as in ComfyUI).

euler (Karras et al. 2022, Alg. 2 without churn; ComfyUI's ``ddim`` is this too), heun (2nd order),
dpm_2 (DPM-Solver-2 midpoint in log sigma), lms (linear multistep, order 4), dpmpp_2m
(DPM-Solver++(2M), Lu et al. 2022).
"""

from __future__ import annotations

from scipy import integrate
from torch import Tensor

from visionatrix.engine.sampling.solver import Denoiser, SolverRun, batch_ones, to_d


def sample_euler(model: Denoiser, x: Tensor, sigmas: Tensor, run: SolverRun) -> Tensor:
    s_in = batch_ones(x)
    for i in range(len(sigmas) - 1):
        sigma = sigmas[i]
        denoised = model(x, sigma * s_in)
        d = to_d(x, sigma, denoised)
        run.step(i, x, denoised)
        x = x + d * (sigmas[i + 1] - sigma)
    return x


def sample_heun(model: Denoiser, x: Tensor, sigmas: Tensor, run: SolverRun) -> Tensor:
    s_in = batch_ones(x)
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = model(x, sigma * s_in)
        d = to_d(x, sigma, denoised)
        run.step(i, x, denoised)
        dt = sigma_next - sigma
        if sigma_next == 0:
            x = x + d * dt
            continue
        x_2 = x + d * dt
        d_2 = to_d(x_2, sigma_next, model(x_2, sigma_next * s_in))
        x = x + (d + d_2) / 2 * dt
    return x


def sample_dpm_2(model: Denoiser, x: Tensor, sigmas: Tensor, run: SolverRun) -> Tensor:
    s_in = batch_ones(x)
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = model(x, sigma * s_in)
        d = to_d(x, sigma, denoised)
        run.step(i, x, denoised)
        if sigma_next == 0:
            x = x + d * (sigma_next - sigma)
            continue
        sigma_mid = sigma.log().lerp(sigma_next.log(), 0.5).exp()
        x_2 = x + d * (sigma_mid - sigma)
        d_2 = to_d(x_2, sigma_mid, model(x_2, sigma_mid * s_in))
        x = x + d_2 * (sigma_next - sigma)
    return x


def _lms_coefficient(order: int, t: list[float], i: int, j: int) -> float:
    """The weight of the derivative ``j`` steps back: the integral of its Lagrange basis polynomial."""

    def basis(tau: float) -> float:
        prod = 1.0
        for k in range(order):
            if j != k:
                prod *= (tau - t[i - k]) / (t[i - j] - t[i - k])
        return prod

    return float(integrate.quad(basis, t[i], t[i + 1], epsrel=1e-4)[0])


def sample_lms(model: Denoiser, x: Tensor, sigmas: Tensor, run: SolverRun, order: int = 4) -> Tensor:
    s_in = batch_ones(x)
    t = sigmas.detach().cpu().numpy()
    ds: list[Tensor] = []
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * s_in)
        ds = [*ds, to_d(x, sigmas[i], denoised)][-order:]
        run.step(i, x, denoised)
        if sigmas[i + 1] == 0:
            x = denoised
            continue
        current = min(i + 1, order)
        coefficients = [_lms_coefficient(current, t, i, j) for j in range(current)]
        x = x + sum(c * d for c, d in zip(coefficients, reversed(ds), strict=False))
    return x


def sample_dpmpp_2m(model: Denoiser, x: Tensor, sigmas: Tensor, run: SolverRun) -> Tensor:
    s_in = batch_ones(x)
    old_denoised = None
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * s_in)
        run.step(i, x, denoised)
        t, t_next = sigmas[i].log().neg(), sigmas[i + 1].log().neg()
        h = t_next - t
        target = denoised
        if old_denoised is not None and sigmas[i + 1] != 0:
            r = (t - sigmas[i - 1].log().neg()) / h
            target = (1 + 1 / (2 * r)) * denoised - (1 / (2 * r)) * old_denoised
        x = (t_next.neg().exp() / t.neg().exp()) * x - (-h).expm1() * target
        old_denoised = denoised
    return x
