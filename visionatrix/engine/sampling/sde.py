"""SDE samplers (DPM-Solver++ family, Lu et al. 2022) with Brownian-tree noise, as in ComfyUI.

dpmpp_sde (2nd-order singlestep, r = 1/2), dpmpp_2m_sde (2nd-order multistep, midpoint),
dpmpp_3m_sde (3rd-order multistep), all at eta = 1. The noise for a step (sigma -> sigma_next)
is the Brownian path's increment over that interval, seeded with the task seed: the ``_gpu``
variants build the path on the latent's device, the others on the CPU.
"""

from __future__ import annotations

from torch import Tensor

from visionatrix.engine.sampling.noise import BrownianTreeNoiseSampler
from visionatrix.engine.sampling.solver import Denoiser, SolverRun, ancestral_step, batch_ones


def brownian_noise(x: Tensor, sigmas: Tensor, run: SolverRun) -> BrownianTreeNoiseSampler:
    cpu = not run.options.get("noise_on_device", False)
    return BrownianTreeNoiseSampler(x, sigmas[sigmas > 0].min(), sigmas.max(), seed=run.seed, cpu=bool(cpu))


def _lambda(sigma: Tensor) -> Tensor:
    """Half log-SNR for variance-exploding sigmas: -ln sigma."""
    return sigma.log().neg()


def sample_dpmpp_sde(model: Denoiser, x: Tensor, sigmas: Tensor, run: SolverRun, r: float = 0.5) -> Tensor:
    if len(sigmas) <= 1:
        return x
    noise = brownian_noise(x, sigmas, run)
    s_in = batch_ones(x)
    fac = 1 / (2 * r)
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = model(x, sigma * s_in)
        run.step(i, x, denoised)
        if sigma_next == 0:
            x = denoised
            continue
        lambda_s, lambda_t = _lambda(sigma), _lambda(sigma_next)
        h = lambda_t - lambda_s
        lambda_s_1 = lambda_s + r * h
        sigma_s_1 = lambda_s_1.neg().exp()
        alpha_s = sigma * lambda_s.exp()
        alpha_s_1 = sigma_s_1 * lambda_s_1.exp()
        alpha_t = sigma_next * lambda_t.exp()
        # step 1: to the intermediate point, with its share of noise
        sd, su = ancestral_step(lambda_s.neg().exp(), lambda_s_1.neg().exp())
        h_ = sd.log().neg() - lambda_s
        x_2 = (alpha_s_1 / alpha_s) * (-h_).exp() * x - alpha_s_1 * (-h_).expm1() * denoised
        x_2 = x_2 + alpha_s_1 * noise(sigma, sigma_s_1) * 1.0 * su
        denoised_2 = model(x_2, sigma_s_1 * s_in)
        # step 2: the full step from a blend of both predictions
        sd, su = ancestral_step(lambda_s.neg().exp(), lambda_t.neg().exp())
        h_ = sd.log().neg() - lambda_s
        denoised_d = (1 - fac) * denoised + fac * denoised_2
        x = (alpha_t / alpha_s) * (-h_).exp() * x - alpha_t * (-h_).expm1() * denoised_d
        x = x + alpha_t * noise(sigma, sigma_next) * 1.0 * su
    return x


def sample_dpmpp_2m_sde(model: Denoiser, x: Tensor, sigmas: Tensor, run: SolverRun) -> Tensor:
    return _multistep_sde(model, x, sigmas, run, third_order=False)


def sample_dpmpp_3m_sde(model: Denoiser, x: Tensor, sigmas: Tensor, run: SolverRun) -> Tensor:
    return _multistep_sde(model, x, sigmas, run, third_order=True)


def _multistep_sde(model: Denoiser, x: Tensor, sigmas: Tensor, run: SolverRun, third_order: bool) -> Tensor:
    if len(sigmas) <= 1:
        return x
    noise = brownian_noise(x, sigmas, run)
    s_in = batch_ones(x)
    eta = 1.0
    history: list[tuple[Tensor, Tensor | None]] = []  # (denoised, h) of earlier steps, newest first
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = model(x, sigma * s_in)
        run.step(i, x, denoised)
        h = None
        if sigma_next == 0:
            x = denoised
        else:
            lambda_s, lambda_t = _lambda(sigma), _lambda(sigma_next)
            h = lambda_t - lambda_s
            h_eta = h * (eta + 1)
            alpha_t = sigma_next * lambda_t.exp()
            x = sigma_next / sigma * (-h * eta).exp() * x + alpha_t * (-h_eta).expm1().neg() * denoised
            x = _multistep_correction(x, denoised, h, h_eta, alpha_t, history, third_order)
            x = x + noise(sigma, sigma_next) * sigma_next * (-2 * h * eta).expm1().neg().sqrt() * 1.0
        history = [(denoised, h), *history][:2]
    return x


def _multistep_correction(
    x: Tensor,
    denoised: Tensor,
    h: Tensor,
    h_eta: Tensor,
    alpha_t: Tensor,
    history: list[tuple[Tensor, Tensor | None]],
    third_order: bool,
) -> Tensor:
    """``x`` plus the higher-order terms from the previous one or two steps' predictions."""
    if not history or history[0][1] is None:
        return x
    denoised_1, h_1 = history[0]
    assert h_1 is not None
    phi_2 = h_eta.neg().expm1() / h_eta + 1
    if not third_order:
        # dpmpp_2m_sde's midpoint rule
        return x + 0.5 * alpha_t * (-h_eta).expm1().neg() * (1 / (h_1 / h)) * (denoised - denoised_1)
    if len(history) < 2 or history[1][1] is None:
        return x + (alpha_t * phi_2) * ((denoised - denoised_1) / (h_1 / h))
    denoised_2, h_2 = history[1]
    r0, r1 = h_1 / h, h_2 / h
    d1_0 = (denoised - denoised_1) / r0
    d1_1 = (denoised_1 - denoised_2) / r1
    d1 = d1_0 + (d1_0 - d1_1) * r0 / (r0 + r1)
    d2 = (d1_0 - d1_1) / (r0 + r1)
    phi_3 = phi_2 / h_eta - 0.5
    return x + (alpha_t * phi_2) * d1 - (alpha_t * phi_3) * d2
