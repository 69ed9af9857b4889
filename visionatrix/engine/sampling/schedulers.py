"""Schedulers: the sigmas a sampling run visits, falling to 0, by ComfyUI's names and rules.

Each takes the model's ``ModelSampling`` and a step count and returns ``steps + 1`` float32 sigmas
(``beta`` may return fewer when two quantiles round to the same timestep, as in ComfyUI).

- normal: timesteps evenly spaced from the largest to the smallest, both included, read back as
  (interpolated) sigmas.
- sgm_uniform: ``steps`` timesteps evenly spaced from the largest, continuously (999, 749.25, …):
  SDXL-Lightning's trailing spacing.
- simple: every ``1000 / steps``-th training sigma from the top.
- ddim_uniform: every ``1000 // steps``-th training sigma from timestep 1 up, reversed.
- karras: Karras et al. (2022), evenly spaced in sigma^(1/7).
- exponential: evenly spaced in log sigma.
- beta: timesteps at the quantiles of a Beta(0.6, 0.6) distribution (arXiv:2407.12173).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from visionatrix.engine.sampling.model_sampling import ModelSampling

Scheduler = Callable[[ModelSampling, int], Tensor]


def _append_zero(x: Tensor) -> Tensor:
    return torch.cat([x, x.new_zeros([1])])


def karras(ms: ModelSampling, steps: int, rho: float = 7.0) -> Tensor:
    return karras_sigmas(steps, float(ms.sigma_min), float(ms.sigma_max), rho)


def karras_sigmas(steps: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> Tensor:
    ramp = torch.linspace(0, 1, steps)
    low, high = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return _append_zero((high + ramp * (low - high)) ** rho)


def exponential(ms: ModelSampling, steps: int) -> Tensor:
    return exponential_sigmas(steps, float(ms.sigma_min), float(ms.sigma_max))


def exponential_sigmas(steps: int, sigma_min: float, sigma_max: float) -> Tensor:
    return _append_zero(torch.linspace(math.log(sigma_max), math.log(sigma_min), steps).exp())


def normal(ms: ModelSampling, steps: int) -> Tensor:
    return _spaced_timesteps(ms, steps, trailing=False)


def sgm_uniform(ms: ModelSampling, steps: int) -> Tensor:
    return _spaced_timesteps(ms, steps, trailing=True)


def _spaced_timesteps(ms: ModelSampling, steps: int, trailing: bool) -> Tensor:
    start, end = ms.timestep(ms.sigma_max), ms.timestep(ms.sigma_min)
    append_zero = True
    if trailing:
        timesteps = torch.linspace(start, end, steps + 1)[:-1]
    else:
        if math.isclose(float(ms.sigma(end)), 0, abs_tol=0.00001):
            # a schedule whose last sigma is already 0 gets one more real step instead of a 0
            steps += 1
            append_zero = False
        timesteps = torch.linspace(start, end, steps)
    sigmas = [float(ms.sigma(t)) for t in timesteps]
    return torch.tensor([*sigmas, 0.0] if append_zero else sigmas, dtype=torch.float32)


def simple(ms: ModelSampling, steps: int) -> Tensor:
    stride = len(ms.sigmas) / steps
    sigmas = [float(ms.sigmas[-(1 + int(i * stride))]) for i in range(steps)]
    return torch.tensor([*sigmas, 0.0], dtype=torch.float32)


def ddim_uniform(ms: ModelSampling, steps: int) -> Tensor:
    first = 1
    sigmas: list[float] = [0.0]
    if math.isclose(float(ms.sigmas[first]), 0, abs_tol=0.00001):
        steps += 1
        sigmas = []
    stride = max(len(ms.sigmas) // steps, 1)
    sigmas += [float(ms.sigmas[t]) for t in range(first, len(ms.sigmas), stride)]
    return torch.tensor(sigmas[::-1], dtype=torch.float32)


def beta(ms: ModelSampling, steps: int, alpha: float = 0.6, beta_: float = 0.6) -> Tensor:
    from scipy.stats import beta as beta_distribution

    last = len(ms.sigmas) - 1
    quantiles = 1 - np.linspace(0, 1, steps, endpoint=False)
    timesteps = np.rint(beta_distribution.ppf(quantiles, alpha, beta_) * last)
    sigmas: list[float] = []
    previous = -1.0
    for t in timesteps:
        if t != previous:  # quantiles that round to the same timestep give one step
            sigmas.append(float(ms.sigmas[int(t)]))
        previous = t
    return torch.tensor([*sigmas, 0.0], dtype=torch.float32)


SCHEDULERS: dict[str, Scheduler] = {
    "simple": simple,
    "sgm_uniform": sgm_uniform,
    "karras": karras,
    "exponential": exponential,
    "ddim_uniform": ddim_uniform,
    "beta": beta,
    "normal": normal,
}


def calculate_sigmas(ms: ModelSampling, scheduler: str, steps: int) -> Tensor:
    return SCHEDULERS[scheduler](ms, steps)


def ksampler_sigmas(
    ms: ModelSampling, scheduler: str, steps: int, denoise: float = 1.0, discard_penultimate: bool = False
) -> Tensor:
    """The sigmas of a ``KSampler`` run (ComfyUI's ``KSampler.set_steps``).

    ``denoise <= 0.9999`` runs the last ``steps`` steps of a ``int(steps / denoise)``-step schedule;
    samplers that ``discard_penultimate`` (dpm_2, dpm_2_ancestral, uni_pc) compute one step more
    and drop the sigma before the final 0.
    """

    def compute(n: int) -> Tensor:
        if not discard_penultimate:
            return calculate_sigmas(ms, scheduler, n)
        sigmas = calculate_sigmas(ms, scheduler, n + 1)
        return torch.cat([sigmas[:-2], sigmas[-1:]])

    if denoise > 0.9999:
        return compute(steps)
    if denoise <= 0.0:
        return torch.zeros(0)
    return compute(int(steps / denoise))[-(steps + 1) :]


# Align Your Steps (Sabour et al., 2024): NVIDIA's published 10-step noise levels, log-linearly
# interpolated to other step counts.
AYS_NOISE_LEVELS = {
    "SD1": (14.6146412293, 6.4745760956, 3.8636745985, 2.6946151520, 1.8841921177, 1.3943805092,
            0.9642583904, 0.6523686016, 0.3977456272, 0.1515232662, 0.0291671582),
    "SDXL": (14.6146412293, 6.3184485287, 3.7681790315, 2.1811480769, 1.3405244945, 0.8620721141,
             0.5550693289, 0.3798540708, 0.2332364134, 0.1114188177, 0.0291671582),
    "SVD": (700.00, 54.5, 15.886, 7.977, 4.248, 1.789, 0.981, 0.403, 0.173, 0.034, 0.002),
}  # fmt: skip


def align_your_steps(model_type: str, steps: int, denoise: float = 1.0) -> Tensor:
    total = steps
    if denoise < 1.0:
        if denoise <= 0.0:
            return torch.zeros(0)
        total = round(steps * denoise)
    levels = np.array(AYS_NOISE_LEVELS[model_type], dtype=np.float64)
    if steps + 1 != len(levels):
        xs = np.linspace(0, 1, len(levels))
        ys = np.interp(np.linspace(0, 1, steps + 1), xs, np.log(levels[::-1]))
        levels = np.exp(ys)[::-1].copy()
    levels = levels[-(total + 1) :]
    levels[-1] = 0
    return torch.tensor(levels, dtype=torch.float32)
