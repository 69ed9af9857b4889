"""How a diffusion model sees noise, as ComfyUI's ``comfy/model_sampling.py`` defines it.

A ``ModelSampling`` pairs a *noise schedule* (which sigmas exist and how a sigma maps to the
timestep the network is given) with a *prediction type* (what the network outputs):

- ``DiscreteSchedule``: 1000 training timesteps with a scaled-linear beta schedule (SD, SDXL).
  A sigma maps to the nearest training timestep (argmin of |log sigma - log sigmas|), an integer;
  a fractional timestep maps back to a sigma by interpolating log sigma.
- ``ContinuousEDMSchedule``: EDM's continuous sigmas (Playground v2.5, ``ModelSamplingContinuousEDM``);
  timestep = 0.25 · ln sigma.
- ``FluxSchedule``: rectified flow with Flux's resolution-dependent time shift (Flux.1 dev, Kontext,
  Fill: ComfyUI's ``ModelSamplingFlux``): 10000 sigmas ``e^mu / (e^mu + 1/t - 1)``; timestep = sigma.
- ``DiscreteFlowSchedule``: rectified flow with the SD3-style SNR shift (Flux.1 schnell: shift 1,
  multiplier 1; ComfyUI's ``ModelSamplingDiscreteFlow``).
- prediction ``eps`` (noise), ``v_prediction`` or ``edm``, with ``sigma_data`` (1.0, or 0.5 for EDM),
  or ``flow`` (ComfyUI's ``CONST``: the network predicts velocity; x_sigma = sigma·noise + (1-sigma)·x0).

Sigmas are float32 like ComfyUI's buffers (computed in float64 first, then rounded).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import torch

if TYPE_CHECKING:
    from torch import Tensor

PREDICTIONS = ("eps", "v_prediction", "edm", "flow")


class NoiseSchedule(Protocol):
    sigmas: Tensor  # float32, rising
    log_sigmas: Tensor

    def timestep(self, sigma: Tensor) -> Tensor: ...

    def sigma(self, timestep: Tensor) -> Tensor: ...

    def percent_to_sigma(self, percent: float) -> float: ...


class DiscreteSchedule:
    """``n`` discrete training timesteps, betas linear in sqrt between ``beta_start`` and ``beta_end``."""

    def __init__(
        self, beta_start: float = 0.00085, beta_end: float = 0.012, n: int = 1000, zsnr: bool = False
    ) -> None:
        betas = torch.linspace(beta_start**0.5, beta_end**0.5, n, dtype=torch.float64) ** 2
        alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)
        sigmas = ((1 - alphas_cumprod) / alphas_cumprod) ** 0.5
        if zsnr:
            sigmas = _zero_terminal_snr(sigmas)
        self.sigmas = sigmas.float()
        self.log_sigmas = sigmas.log().float()

    def timestep(self, sigma: Tensor) -> Tensor:
        """The training timestep nearest to ``sigma`` in log space (integer-valued)."""
        dists = sigma.log().to(self.log_sigmas.device) - self.log_sigmas[:, None]
        return dists.abs().argmin(dim=0).view(sigma.shape).to(sigma.device)

    def sigma(self, timestep: Tensor) -> Tensor:
        """Sigma at a (possibly fractional) timestep, interpolating log sigma linearly."""
        t = torch.clamp(timestep.float().to(self.log_sigmas.device), min=0, max=len(self.sigmas) - 1)
        low, high, w = t.floor().long(), t.ceil().long(), t.frac()
        log_sigma = (1 - w) * self.log_sigmas[low] + w * self.log_sigmas[high]
        return log_sigma.exp().to(timestep.device)

    def percent_to_sigma(self, percent: float) -> float:
        if percent <= 0.0:
            return 999999999.9
        if percent >= 1.0:
            return 0.0
        return float(self.sigma(torch.tensor((1.0 - percent) * 999.0)).item())


def _zero_terminal_snr(sigmas: Tensor) -> Tensor:
    """Rescale so the last timestep is (almost) pure noise (Lin et al. 2023, "zero terminal SNR")."""
    root = (1 / ((sigmas * sigmas) + 1)).sqrt()
    first, last = root[0].clone(), root[-1].clone()
    root = (root - last) * (first / (first - last))
    alphas_bar = root**2
    alphas_bar[-1] = 4.8973451890853435e-08  # ComfyUI's stand-in for 0, keeping sigma finite
    return ((1 - alphas_bar) / alphas_bar) ** 0.5


class ContinuousEDMSchedule:
    """EDM's continuous sigmas between ``sigma_min`` and ``sigma_max`` (1000 log-spaced for schedulers)."""

    def __init__(self, sigma_min: float = 0.002, sigma_max: float = 120.0) -> None:
        self.sigmas = torch.linspace(math.log(sigma_min), math.log(sigma_max), 1000).exp()
        self.log_sigmas = self.sigmas.log()

    def timestep(self, sigma: Tensor) -> Tensor:
        return 0.25 * sigma.log()

    def sigma(self, timestep: Tensor) -> Tensor:
        return (timestep / 0.25).exp()

    def percent_to_sigma(self, percent: float) -> float:
        if percent <= 0.0:
            return 999999999.9
        if percent >= 1.0:
            return 0.0
        low = math.log(float(self.sigmas[0]))
        return math.exp((math.log(float(self.sigmas[-1])) - low) * (1.0 - percent) + low)


def flux_time_shift(mu: float, sigma: float, t: Tensor) -> Tensor:
    """Flux's time shift of ``t`` in (0, 1] (BFL ``time_shift``, ComfyUI ``flux_time_shift``)."""
    return math.exp(mu) / (math.exp(mu) + (1 / t - 1) ** sigma)


def time_snr_shift(alpha: float, t: Tensor) -> Tensor:
    """SD3's SNR shift of ``t`` (ComfyUI ``time_snr_shift``); the identity for ``alpha == 1``."""
    if alpha == 1.0:
        return t
    return alpha * t / (1 + (alpha - 1) * t)


class FluxSchedule:
    """Flux's shifted flow sigmas; ``shift`` is the ``mu`` of BFL's ``time_shift`` (1.15 by default)."""

    def __init__(self, shift: float = 1.15, timesteps: int = 10000) -> None:
        self.shift = shift
        self.sigmas = flux_time_shift(shift, 1.0, torch.arange(1, timesteps + 1, 1) / timesteps)
        self.log_sigmas = self.sigmas.log()

    def timestep(self, sigma: Tensor) -> Tensor:
        return sigma

    def sigma(self, timestep: Tensor) -> Tensor:
        return flux_time_shift(self.shift, 1.0, timestep)

    def percent_to_sigma(self, percent: float) -> float:
        if percent <= 0.0:
            return 1.0
        if percent >= 1.0:
            return 0.0
        return float(flux_time_shift(self.shift, 1.0, torch.tensor(1.0 - percent)))


class DiscreteFlowSchedule:
    """Flow sigmas ``t`` (SNR-shifted by ``shift``) at ``timesteps`` points; timestep = sigma · multiplier."""

    def __init__(self, shift: float = 1.0, multiplier: float = 1000.0, timesteps: int = 1000) -> None:
        self.shift, self.multiplier = shift, multiplier
        self.sigmas = self.sigma((torch.arange(1, timesteps + 1, 1) / timesteps) * multiplier)
        self.log_sigmas = self.sigmas.log()

    def timestep(self, sigma: Tensor) -> Tensor:
        return sigma * self.multiplier

    def sigma(self, timestep: Tensor) -> Tensor:
        return time_snr_shift(self.shift, timestep / self.multiplier)

    def percent_to_sigma(self, percent: float) -> float:
        if percent <= 0.0:
            return 1.0
        if percent >= 1.0:
            return 0.0
        return float(time_snr_shift(self.shift, torch.tensor(1.0 - percent)))


def _per_sample(sigma: Tensor, like: Tensor) -> Tensor:
    return sigma.view(sigma.shape[:1] + (1,) * (like.ndim - 1))


@dataclass(frozen=True)
class ModelSampling:
    """A noise schedule plus the network's prediction type (ComfyUI's ``model_sampling`` object)."""

    schedule: NoiseSchedule
    prediction: str = "eps"
    sigma_data: float = 1.0

    def __post_init__(self) -> None:
        if self.prediction not in PREDICTIONS:
            raise ValueError(f"prediction {self.prediction!r}: expected one of {', '.join(PREDICTIONS)}")

    @property
    def sigmas(self) -> Tensor:
        return self.schedule.sigmas

    @property
    def sigma_min(self) -> Tensor:
        return self.schedule.sigmas[0]

    @property
    def sigma_max(self) -> Tensor:
        return self.schedule.sigmas[-1]

    def timestep(self, sigma: Tensor) -> Tensor:
        return self.schedule.timestep(sigma)

    def sigma(self, timestep: Tensor) -> Tensor:
        return self.schedule.sigma(timestep)

    def percent_to_sigma(self, percent: float) -> float:
        return self.schedule.percent_to_sigma(percent)

    def calculate_input(self, sigma: Tensor, x: Tensor) -> Tensor:
        """What the network is fed at noise level ``sigma``: x scaled to unit variance (flow: x itself)."""
        if self.prediction == "flow":
            return x
        return x / (_per_sample(sigma, x) ** 2 + self.sigma_data**2) ** 0.5

    def calculate_denoised(self, sigma: Tensor, output: Tensor, x: Tensor) -> Tensor:
        """The network's ``output`` at ``x`` turned into a prediction of the clean latent."""
        s, d = _per_sample(sigma, output), self.sigma_data
        if self.prediction in ("eps", "flow"):
            return x - output * s
        skip = x * d**2 / (s**2 + d**2)
        out = output * s * d / (s**2 + d**2) ** 0.5
        return skip - out if self.prediction == "v_prediction" else skip + out

    def noise_scaling(
        self, sigma: Tensor, noise: Tensor, latent: Tensor, max_denoise: bool = False
    ) -> Tensor:
        """The starting point: ``latent`` plus noise at ``sigma`` (variance-corrected from pure noise)."""
        s = _per_sample(sigma, noise)
        if self.prediction == "flow":
            return s * noise + (1.0 - s) * latent
        scaled = noise * torch.sqrt(1.0 + s**2.0) if max_denoise else noise * s
        return scaled + latent

    def inverse_noise_scaling(self, sigma: Tensor, latent: Tensor) -> Tensor:
        """A sampler's result back to a clean latent: flow models end scaled by ``1 - sigma``."""
        if self.prediction == "flow":
            return latent / (1.0 - _per_sample(sigma.reshape(-1), latent))
        return latent

    def is_max_denoise(self, sigmas: Tensor) -> bool:
        """Whether a run starting at ``sigmas[0]`` starts from pure noise (ComfyUI's ``max_denoise``)."""
        max_sigma, sigma = float(self.sigma_max), float(sigmas[0])
        return math.isclose(max_sigma, sigma, rel_tol=1e-05) or sigma > max_sigma


def discrete(prediction: str = "eps") -> ModelSampling:
    """SD / SDXL's sampling: the scaled-linear 1000-step schedule."""
    return ModelSampling(DiscreteSchedule(), prediction)


def continuous_edm(
    sigma_min: float, sigma_max: float, prediction: str = "edm", sigma_data: float = 0.5
) -> ModelSampling:
    return ModelSampling(ContinuousEDMSchedule(sigma_min, sigma_max), prediction, sigma_data)


def flux(shift: float = 1.15) -> ModelSampling:
    """Flux.1 dev/Kontext/Fill's sampling (ComfyUI ``ModelSamplingFlux`` + ``CONST``)."""
    return ModelSampling(FluxSchedule(shift), "flow")


def discrete_flow(shift: float = 1.0, multiplier: float = 1000.0) -> ModelSampling:
    """Flux.1 schnell's sampling with ``shift=1, multiplier=1`` (ComfyUI ``ModelSamplingDiscreteFlow``)."""
    return ModelSampling(DiscreteFlowSchedule(shift, multiplier), "flow")
