"""k-diffusion style sampling for discrete-time ε-prediction models (SD / SDXL), in torch.

The model is seen through a *denoiser* ``denoise(x, sigma) -> x0``: the sampler works on
``x = x0 + sigma * noise`` and never sees timesteps. ``DiscreteSchedule`` turns the model's
1000 training betas into sigmas and back, schedulers pick the sigmas to visit (ComfyUI names),
samplers walk them (ComfyUI names). Sigmas always end in 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

Denoiser = Callable[["torch.Tensor", float], "torch.Tensor"]
StepCallback = Callable[[int, int], None]


class DiscreteSchedule:
    """The sigmas of a model trained on ``n`` discrete timesteps with a scaled-linear beta schedule."""

    def __init__(self, beta_start: float = 0.00085, beta_end: float = 0.012, n: int = 1000) -> None:
        import torch

        betas = torch.linspace(beta_start**0.5, beta_end**0.5, n, dtype=torch.float64) ** 2
        alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)
        self.sigmas = ((1 - alphas_cumprod) / alphas_cumprod) ** 0.5  # float64, rising with t
        self.log_sigmas = self.sigmas.log()

    @property
    def sigma_min(self) -> float:
        return float(self.sigmas[0])

    @property
    def sigma_max(self) -> float:
        return float(self.sigmas[-1])

    def sigma(self, t: float) -> float:
        """Sigma at (possibly fractional) timestep ``t``, interpolated in log space."""
        t = min(max(float(t), 0.0), len(self.sigmas) - 1.0)
        low = math.floor(t)
        high = min(low + 1, len(self.sigmas) - 1)
        w = t - low
        return math.exp((1 - w) * float(self.log_sigmas[low]) + w * float(self.log_sigmas[high]))

    def timestep(self, sigma: float) -> float:
        """The (fractional) timestep whose sigma is ``sigma``: the inverse of ``sigma()``."""
        import torch

        log_sigma = math.log(max(sigma, 1e-10))
        high = int(torch.searchsorted(self.log_sigmas, torch.tensor(log_sigma, dtype=torch.float64)))
        high = min(max(high, 1), len(self.sigmas) - 1)
        low = high - 1
        lo, hi = float(self.log_sigmas[low]), float(self.log_sigmas[high])
        w = min(max((log_sigma - lo) / (hi - lo), 0.0), 1.0)
        return low + w


# --- schedulers: (schedule, steps) -> steps + 1 sigmas, falling to 0 -------------------------------


def sgm_uniform_timesteps(schedule: DiscreteSchedule, steps: int) -> list[int]:
    """Evenly spaced timesteps from the last one down, never 0 ("trailing" spacing).

    ComfyUI spaces these continuously (999, 749.25, …); they are floored here to the integer
    timesteps the model was trained on, which is what diffusers' trailing spacing gives and what
    SDXL-Lightning was distilled with: 4 steps → 999, 749, 499, 249.
    """
    last = len(schedule.sigmas) - 1
    return [math.floor(last - i * last / steps) for i in range(steps)]


def sgm_uniform(schedule: DiscreteSchedule, steps: int) -> list[float]:
    return [schedule.sigma(t) for t in sgm_uniform_timesteps(schedule, steps)] + [0.0]


def normal(schedule: DiscreteSchedule, steps: int) -> list[float]:
    """Timesteps evenly spaced from the last to the first, both included."""
    last = len(schedule.sigmas) - 1
    if steps == 1:
        return [schedule.sigma_max, 0.0]
    return [schedule.sigma(last - i * last / (steps - 1)) for i in range(steps)] + [0.0]


def karras(schedule: DiscreteSchedule, steps: int, rho: float = 7.0) -> list[float]:
    """Karras et al. (2022): evenly spaced in ``sigma ** (1 / rho)``."""
    hi, lo = schedule.sigma_max ** (1 / rho), schedule.sigma_min ** (1 / rho)
    ramp = [i / (steps - 1) for i in range(steps)] if steps > 1 else [0.0]
    return [(hi + r * (lo - hi)) ** rho for r in ramp] + [0.0]


def exponential(schedule: DiscreteSchedule, steps: int) -> list[float]:
    """Evenly spaced in log sigma."""
    hi, lo = math.log(schedule.sigma_max), math.log(schedule.sigma_min)
    ramp = [i / (steps - 1) for i in range(steps)] if steps > 1 else [0.0]
    return [math.exp(hi + r * (lo - hi)) for r in ramp] + [0.0]


def simple(schedule: DiscreteSchedule, steps: int) -> list[float]:
    """Every ``n / steps``-th training sigma from the top."""
    n = len(schedule.sigmas)
    stride = n / steps
    return [float(schedule.sigmas[-(1 + int(i * stride))]) for i in range(steps)] + [0.0]


SCHEDULERS: dict[str, Callable[[DiscreteSchedule, int], list[float]]] = {
    "normal": normal,
    "karras": karras,
    "exponential": exponential,
    "sgm_uniform": sgm_uniform,
    "simple": simple,
}


def schedule_sigmas(
    schedule: DiscreteSchedule, scheduler: str, steps: int, denoise: float = 1.0
) -> list[float]:
    """The sigmas a ``steps``-step run visits; ``denoise < 1`` keeps only the last part of a longer run.

    As in ComfyUI: the schedule is computed for ``int(steps / denoise)`` steps and the last
    ``steps + 1`` sigmas are used, so the run starts from a partly noised latent.
    """
    make = SCHEDULERS[scheduler]
    if denoise >= 1.0:
        return make(schedule, steps)
    total = int(steps / denoise)
    return make(schedule, total)[-(steps + 1) :]


# --- samplers ---------------------------------------------------------------------------------------


def sample_euler(
    denoise: Denoiser,
    x: torch.Tensor,
    sigmas: list[float],
    *,
    generator: torch.Generator | None = None,
    on_step: StepCallback | None = None,
) -> torch.Tensor:
    """Euler's method on the probability-flow ODE."""
    steps = len(sigmas) - 1
    for i in range(steps):
        if on_step:
            on_step(i, steps)
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = denoise(x, sigma)
        x = denoised if sigma_next == 0 else x + (x - denoised) / sigma * (sigma_next - sigma)
    return x


def sample_euler_ancestral(
    denoise: Denoiser,
    x: torch.Tensor,
    sigmas: list[float],
    *,
    generator: torch.Generator | None = None,
    on_step: StepCallback | None = None,
) -> torch.Tensor:
    """Euler steps down to ``sigma_down``, then fresh noise back up to ``sigma_next`` (eta = 1)."""
    import torch

    steps = len(sigmas) - 1
    for i in range(steps):
        if on_step:
            on_step(i, steps)
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = denoise(x, sigma)
        if sigma_next == 0:
            x = denoised
            continue
        sigma_up = min(sigma_next, (sigma_next**2 * (sigma**2 - sigma_next**2) / sigma**2) ** 0.5)
        sigma_down = (sigma_next**2 - sigma_up**2) ** 0.5
        x = x + (x - denoised) / sigma * (sigma_down - sigma)
        # noise is drawn on the CPU so a seed gives the same image on every device
        noise = torch.randn(x.shape, generator=generator, dtype=torch.float32)
        x = x + noise.to(x.device, x.dtype) * sigma_up
    return x


def sample_dpmpp_2m(
    denoise: Denoiser,
    x: torch.Tensor,
    sigmas: list[float],
    *,
    generator: torch.Generator | None = None,
    on_step: StepCallback | None = None,
) -> torch.Tensor:
    """DPM-Solver++(2M): a second-order multistep solver reusing the previous step's x0."""
    steps = len(sigmas) - 1
    old_denoised = None
    for i in range(steps):
        if on_step:
            on_step(i, steps)
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = denoise(x, sigma)
        if sigma_next == 0:
            x = denoised
            continue
        h = math.log(sigma / sigma_next)
        target = denoised
        if old_denoised is not None:
            r = math.log(sigmas[i - 1] / sigma) / h
            target = (1 + 1 / (2 * r)) * denoised - (1 / (2 * r)) * old_denoised
        x = (sigma_next / sigma) * x - math.expm1(-h) * target
        old_denoised = denoised
    return x


SAMPLERS = {
    "euler": sample_euler,
    "euler_ancestral": sample_euler_ancestral,
    "dpmpp_2m": sample_dpmpp_2m,
}
