"""Sampling nodes with ComfyUI's names, inputs, outputs and rules.

    KSampler(model, seed, steps, cfg, sampler_name, scheduler, positive, negative, latent_image, denoise)
    KSamplerAdvanced(model, add_noise, noise_seed, steps, cfg, sampler_name, scheduler, positive,
                     negative, latent_image, start_at_step, end_at_step, return_with_leftover_noise)
    SamplerCustom(model, add_noise, noise_seed, cfg, positive, negative, sampler, sigmas, latent_image)
                                                  -> (output LATENT, denoised_output LATENT)
    SamplerCustomAdvanced(noise, guider, sampler, sigmas, latent_image) -> (output, denoised_output)
    KSamplerSelect(sampler_name) -> SAMPLER
    BasicScheduler(model, scheduler, steps, denoise) -> SIGMAS
    AlignYourStepsScheduler(model_type, steps, denoise) -> SIGMAS
    BasicGuider(model, conditioning) -> GUIDER        CFGGuider(model, positive, negative, cfg) -> GUIDER
    RandomNoise(noise_seed) -> NOISE                  DisableNoise() -> NOISE

SAMPLER is ``engine.sampling.samplers.Sampler``, SIGMAS a 1-D float32 CPU tensor, GUIDER
``engine.sampling.guidance.Guider``, NOISE a ``Noise`` (a seed, or none for zeros). Every run
reports progress per step and stops at the next model evaluation when the task is cancelled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from visionatrix.engine.context import NodeContext
from visionatrix.engine.registry import node
from visionatrix.engine.sampling_names import SAMPLER_NAMES, SCHEDULER_NAMES
from visionatrix.errors import InvalidInput

if TYPE_CHECKING:
    import torch

    from visionatrix.engine.sampling.conditioning import Conditioning
    from visionatrix.engine.sampling.diffusion_model import DiffusionModel
    from visionatrix.engine.sampling.guidance import Guider
    from visionatrix.engine.sampling.samplers import Sampler

MAX_SEED = 0xFFFFFFFFFFFFFFFF
# Samplers whose steps hold for flow (rectified-flow, ComfyUI CONST) models as written: ComfyUI
# switches the ancestral and SDE ones to flow-specific variants this engine does not have yet.
FLOW_SAMPLERS = frozenset({"euler", "heun", "dpm_2", "lms", "dpmpp_2m", "ddim"})
AYS_MODEL_TYPES = ("SD1", "SDXL", "SVD")
Latent = dict[str, Any]


@dataclass(frozen=True)
class Noise:
    """NOISE: ``RandomNoise`` carries its seed; ``DisableNoise`` has ``seed=0`` and adds none."""

    seed: int
    enabled: bool = True


def _choice(node_name: str, what: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise InvalidInput(
            f"{node_name}: {what} {value!r} is not supported; choose one of {', '.join(allowed)}"
        )
    return value


def _seed(node_name: str, value: Any) -> int:
    seed = int(value)
    if not 0 <= seed <= MAX_SEED:
        raise InvalidInput(f"{node_name}: seed must be in 0..{MAX_SEED}, got {seed}")
    return seed


def _steps(node_name: str, value: Any, least: int = 1) -> int:
    steps = int(value)
    if steps < least or steps > 10000:
        raise InvalidInput(f"{node_name}: steps must be in {least}..10000, got {steps}")
    return steps


def _denoise(node_name: str, value: Any) -> float:
    denoise = float(value)
    if not 0.0 <= denoise <= 1.0:
        raise InvalidInput(f"{node_name}: denoise must be in [0, 1], got {denoise}")
    return denoise


def _sample(
    ctx: NodeContext,
    guider: Guider,
    noise: Noise,
    latent: Latent,
    sampler: Sampler,
    sigmas: torch.Tensor,
) -> tuple[Latent, Latent]:
    """Run one sampling; (output, denoised_output) LATENTs as SamplerCustom returns them."""
    from visionatrix.engine.sampling.run import fix_empty_channels, sample, starting_noise

    model = guider.model
    if model.sampling.prediction == "flow" and sampler.name not in FLOW_SAMPLERS:
        raise InvalidInput(
            f"sampler {sampler.name!r} is not supported for flow models such as Flux here; "
            f"choose one of {', '.join(sorted(FLOW_SAMPLERS))}"
        )
    image = fix_empty_channels(latent["samples"], model.latent_format.channels)
    start = starting_noise(image, noise.seed if noise.enabled else None)
    result = sample(
        guider,
        start,
        image,
        sampler,
        sigmas,
        noise.seed,
        on_step=lambda i, n: ctx.progress(i / n),
        check_cancel=ctx.check_cancel,
        denoise_mask=latent.get("noise_mask"),
    )
    ctx.progress(1.0)
    out = {**latent, "samples": result.samples}
    denoised = {**latent, "samples": result.denoised} if result.denoised is not None else out
    return out, denoised


def _ksampler_sigmas(
    model: DiffusionModel, scheduler: str, sampler: Sampler, steps: int, denoise: float
) -> torch.Tensor:
    from visionatrix.engine.sampling.schedulers import ksampler_sigmas

    return ksampler_sigmas(model.sampling, scheduler, steps, denoise, sampler.discard_penultimate_sigma)


def _pick_sampler(node_name: str, name: str) -> Sampler:
    from visionatrix.engine.sampling.samplers import SAMPLERS

    return SAMPLERS[_choice(node_name, "sampler_name", str(name), SAMPLER_NAMES)]


def _negative_needed(cfg: Any) -> list[str]:
    """At cfg 1 the negative never reaches the model (the guider skips it), so it is not even
    encoded: the result is the same, one text encode sooner. Anything else (a cfg that is no
    number included: ``run`` names the problem) needs it."""
    try:
        return [] if math.isclose(float(cfg), 1.0) else ["negative"]
    except (TypeError, ValueError):
        return ["negative"]


@node("KSampler")
class KSampler:
    lazy = ("negative",)

    def needed(self, cfg: Any = 8.0, **_: Any) -> list[str]:
        return _negative_needed(cfg)

    def run(
        self,
        ctx: NodeContext,
        model: DiffusionModel,
        seed: int,
        steps: int,
        cfg: float,
        sampler_name: str,
        scheduler: str,
        positive: Conditioning,
        negative: Conditioning,
        latent_image: Latent,
        denoise: float = 1.0,
    ) -> tuple[Latent]:
        from visionatrix.engine.sampling.guidance import Guider

        name = "KSampler"
        sampler = _pick_sampler(name, sampler_name)
        _choice(name, "scheduler", str(scheduler), SCHEDULER_NAMES)
        steps, denoise = _steps(name, steps), _denoise(name, denoise)
        sigmas = _ksampler_sigmas(model, scheduler, sampler, steps, denoise)
        guider = Guider(model, positive, negative, float(cfg))
        return (_sample(ctx, guider, Noise(_seed(name, seed)), latent_image, sampler, sigmas)[0],)


@node("KSamplerAdvanced")
class KSamplerAdvanced:
    lazy = ("negative",)

    def needed(self, cfg: Any = 8.0, **_: Any) -> list[str]:
        return _negative_needed(cfg)

    def run(
        self,
        ctx: NodeContext,
        model: DiffusionModel,
        add_noise: str,
        noise_seed: int,
        steps: int,
        cfg: float,
        sampler_name: str,
        scheduler: str,
        positive: Conditioning,
        negative: Conditioning,
        latent_image: Latent,
        start_at_step: int = 0,
        end_at_step: int = 10000,
        return_with_leftover_noise: str = "disable",
        denoise: float = 1.0,
    ) -> tuple[Latent]:
        from visionatrix.engine.sampling.guidance import Guider

        name = "KSamplerAdvanced"
        sampler = _pick_sampler(name, sampler_name)
        _choice(name, "scheduler", str(scheduler), SCHEDULER_NAMES)
        _choice(name, "add_noise", str(add_noise), ("enable", "disable"))
        _choice(name, "return_with_leftover_noise", str(return_with_leftover_noise), ("enable", "disable"))
        steps = _steps(name, steps)
        sigmas = _ksampler_sigmas(model, scheduler, sampler, steps, _denoise(name, denoise))
        # as ComfyUI's KSampler.sample: cut the schedule to [start, end], ending at 0 unless asked not to
        end, start = int(end_at_step), int(start_at_step)
        if end < len(sigmas) - 1:
            sigmas = sigmas[: end + 1].clone()
            if return_with_leftover_noise == "disable":
                sigmas[-1] = 0
        if start >= len(sigmas) - 1:
            return (latent_image,)
        sigmas = sigmas[start:]
        noise = Noise(_seed(name, noise_seed), enabled=add_noise == "enable")
        guider = Guider(model, positive, negative, float(cfg))
        return (_sample(ctx, guider, noise, latent_image, sampler, sigmas)[0],)


@node("SamplerCustom")
class SamplerCustom:
    def run(
        self,
        ctx: NodeContext,
        model: DiffusionModel,
        add_noise: bool,
        noise_seed: int,
        cfg: float,
        positive: Conditioning,
        negative: Conditioning,
        sampler: Sampler,
        sigmas: torch.Tensor,
        latent_image: Latent,
    ) -> tuple[Latent, Latent]:
        from visionatrix.engine.sampling.guidance import Guider

        noise = Noise(_seed("SamplerCustom", noise_seed), enabled=_flag(add_noise))
        guider = Guider(model, positive, negative, float(cfg))
        return _sample(ctx, guider, noise, latent_image, sampler, sigmas)


@node("SamplerCustomAdvanced")
class SamplerCustomAdvanced:
    def run(
        self,
        ctx: NodeContext,
        noise: Noise,
        guider: Guider,
        sampler: Sampler,
        sigmas: torch.Tensor,
        latent_image: Latent,
    ) -> tuple[Latent, Latent]:
        return _sample(ctx, guider, noise, latent_image, sampler, sigmas)


@node("KSamplerSelect")
class KSamplerSelect:
    def run(self, ctx: NodeContext, sampler_name: str) -> tuple[Sampler]:
        return (_pick_sampler("KSamplerSelect", sampler_name),)


@node("BasicScheduler")
class BasicScheduler:
    def run(
        self, ctx: NodeContext, model: DiffusionModel, scheduler: str, steps: int, denoise: float = 1.0
    ) -> tuple[torch.Tensor]:
        import torch

        from visionatrix.engine.sampling.schedulers import calculate_sigmas

        name = "BasicScheduler"
        _choice(name, "scheduler", str(scheduler), SCHEDULER_NAMES)
        steps, denoise = _steps(name, steps), _denoise(name, denoise)
        total = steps
        if denoise < 1.0:
            if denoise <= 0.0:
                return (torch.zeros(0),)
            total = int(steps / denoise)
        return (calculate_sigmas(model.sampling, scheduler, total).cpu()[-(steps + 1) :],)


@node("AlignYourStepsScheduler")
class AlignYourStepsScheduler:
    def run(self, ctx: NodeContext, model_type: str, steps: int, denoise: float = 1.0) -> tuple[torch.Tensor]:
        from visionatrix.engine.sampling.schedulers import align_your_steps

        name = "AlignYourStepsScheduler"
        _choice(name, "model_type", str(model_type), AYS_MODEL_TYPES)
        return (align_your_steps(model_type, _steps(name, steps), _denoise(name, denoise)),)


@node("BasicGuider")
class BasicGuider:
    def run(self, ctx: NodeContext, model: DiffusionModel, conditioning: Conditioning) -> tuple[Guider]:
        from visionatrix.engine.sampling.guidance import Guider

        return (Guider(model, conditioning),)


@node("CFGGuider")
class CFGGuider:
    def run(
        self,
        ctx: NodeContext,
        model: DiffusionModel,
        positive: Conditioning,
        negative: Conditioning,
        cfg: float,
    ) -> tuple[Guider]:
        from visionatrix.engine.sampling.guidance import Guider

        return (Guider(model, positive, negative, float(cfg)),)


@node("RandomNoise")
class RandomNoise:
    def run(self, ctx: NodeContext, noise_seed: int) -> tuple[Noise]:
        return (Noise(_seed("RandomNoise", noise_seed)),)


@node("DisableNoise")
class DisableNoise:
    def run(self, ctx: NodeContext) -> tuple[Noise]:
        return (Noise(0, enabled=False),)


def _flag(value: Any) -> bool:
    """A BOOLEAN input as graphs carry it: a bool, or its spelling."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "enable")
    return bool(value)
