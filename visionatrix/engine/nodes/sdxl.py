"""SDXL text-to-image nodes with ComfyUI's names, inputs and outputs.

    CheckpointLoaderSimple(ckpt_name)                        -> (MODEL, CLIP, VAE)
    CLIPTextEncode(text, clip)                               -> (CONDITIONING,)
    EmptyLatentImage(width, height, batch_size)              -> (LATENT,)
    KSampler(model, seed, steps, cfg, sampler_name, scheduler,
             positive, negative, latent_image, denoise)      -> (LATENT,)
    VAEDecode(samples, vae)                                  -> (IMAGE,)

LATENT is ComfyUI's ``{"samples": tensor (B, 4, H/8, W/8)}`` in the VAE's own (unscaled) latent
space, on the CPU in float32. The checkpoint is an original-layout single file under
``MODELS_DIR/checkpoints`` (``nets/sdxl_loader``). torch, diffusers and transformers are imported
on first use, so the module loads without the worker stack.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from visionatrix.engine.context import NodeContext
from visionatrix.engine.model_inputs import ModelInput
from visionatrix.engine.registry import node
from visionatrix.errors import InvalidInput

if TYPE_CHECKING:
    import torch

    from visionatrix.engine.nets.samplers import DiscreteSchedule
    from visionatrix.engine.nets.sdxl_text import SdxlConditioning

CHECKPOINT_FOLDER = "checkpoints"
LATENT_CHANNELS = 4
LATENT_FACTOR = 8  # pixels per latent cell, each way


@dataclass(frozen=True)
class SdxlModel:
    """MODEL: the denoising UNet and the noise schedule it was trained on."""

    unet: Any
    schedule: DiscreteSchedule
    latent_scale: float
    device: str
    dtype: torch.dtype


@dataclass(frozen=True)
class SdxlClip:
    """CLIP: both SDXL text encoders."""

    text_encoder: Any
    text_encoder_2: Any


@dataclass(frozen=True)
class SdxlVae:
    """VAE: the autoencoder that turns latents into pixels."""

    vae: Any
    device: str
    dtype: torch.dtype


@node("CheckpointLoaderSimple")
class CheckpointLoaderSimple:
    model_inputs = {"ckpt_name": ModelInput(CHECKPOINT_FOLDER, {"sdxl"})}

    def run(self, ctx: NodeContext, ckpt_name: str) -> tuple[SdxlModel, SdxlClip, SdxlVae]:
        import torch

        from visionatrix.engine.nets import sdxl_loader
        from visionatrix.models.device import choose_precision

        path = ctx.models.path(CHECKPOINT_FOLDER, ckpt_name)
        dtype = getattr(torch, choose_precision(ctx.device, ctx.precision))
        shapes = sdxl_loader.read_shapes(path)
        size = sdxl_loader.loaded_size(shapes, dtype, sdxl_loader.vae_dtype_for(dtype, ctx.device))
        stat = path.stat()
        key = f"sdxl:{path}:{stat.st_size}:{stat.st_mtime_ns}:{ctx.device}:{dtype}"

        def load() -> sdxl_loader.SdxlComponents:
            return sdxl_loader.load_checkpoint(path, ctx.device, dtype, lambda i, n: ctx.progress(i / n))

        parts = ctx.models.cached(key, load, size)
        return (
            SdxlModel(parts.unet, parts.schedule, parts.latent_scale, parts.device, parts.dtype),
            SdxlClip(parts.text_encoder, parts.text_encoder_2),
            SdxlVae(parts.vae, parts.device, parts.vae_dtype),
        )


@node("CLIPTextEncode")
class CLIPTextEncode:
    def run(self, ctx: NodeContext, text: str, clip: SdxlClip) -> tuple[SdxlConditioning]:
        from visionatrix.engine.nets.sdxl_text import encode_prompt

        return (encode_prompt(clip.text_encoder, clip.text_encoder_2, str(text)),)


@node("EmptyLatentImage")
class EmptyLatentImage:
    def run(self, ctx: NodeContext, width: int, height: int, batch_size: int = 1) -> tuple[dict[str, Any]]:
        import torch

        for name, value, least in (
            ("width", width, 16),
            ("height", height, 16),
            ("batch_size", batch_size, 1),
        ):
            if int(value) < least:
                raise InvalidInput(f"EmptyLatentImage: {name} must be at least {least}, got {value}")
        shape = (int(batch_size), LATENT_CHANNELS, int(height) // LATENT_FACTOR, int(width) // LATENT_FACTOR)
        return ({"samples": torch.zeros(shape)},)


@node("KSampler")
class KSampler:
    def run(
        self,
        ctx: NodeContext,
        model: SdxlModel,
        seed: int,
        steps: int,
        cfg: float,
        sampler_name: str,
        scheduler: str,
        positive: SdxlConditioning,
        negative: SdxlConditioning,
        latent_image: dict[str, Any],
        denoise: float = 1.0,
    ) -> tuple[dict[str, Any]]:
        import torch

        from visionatrix.engine.nets import samplers

        sample = _pick(samplers.SAMPLERS, sampler_name, "sampler_name")
        _pick(samplers.SCHEDULERS, scheduler, "scheduler")
        steps, cfg, denoise = int(steps), float(cfg), float(denoise)
        if steps < 1 or not 0.0 <= denoise <= 1.0:
            raise InvalidInput(
                f"KSampler: steps must be ≥ 1 and denoise in [0, 1], got {steps} and {denoise}"
            )
        latent = latent_image["samples"]
        if denoise == 0.0:  # nothing to do, as in ComfyUI
            return ({**latent_image, "samples": latent.clone()},)
        sigmas = samplers.schedule_sigmas(model.schedule, scheduler, steps, denoise)
        # one CPU generator for the starting noise and any noise a sampler adds later: a seed
        # gives the same image on every device
        generator = torch.Generator("cpu").manual_seed(int(seed) % (1 << 64))
        x = _start_latent(model, latent, sigmas, generator)
        denoiser = _Denoiser(model, positive, negative, cfg, batch=latent.shape[0])
        with torch.inference_mode():
            x = sample(denoiser, x, sigmas, generator=generator, on_step=lambda i, n: ctx.progress(i / n))
        ctx.progress(1.0)
        return ({**latent_image, "samples": (x / model.latent_scale).float().cpu()},)


@node("VAEDecode")
class VAEDecode:
    def run(self, ctx: NodeContext, samples: dict[str, Any], vae: SdxlVae) -> tuple[np.ndarray]:
        import torch

        latents = samples["samples"]
        images = []
        with torch.inference_mode():
            # one image at a time: decoding is the memory peak of the whole flow
            for i in range(latents.shape[0]):
                ctx.progress(i / latents.shape[0])
                decoded = vae.vae.decode(latents[i : i + 1].to(vae.device, vae.dtype)).sample
                images.append((decoded.float() / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).cpu())
        ctx.progress(1.0)
        return (torch.cat(images).numpy().astype(np.float32, copy=False),)


def _pick(table: dict[str, Any], name: str, what: str) -> Any:
    if name not in table:
        raise InvalidInput(f"KSampler: {what} {name!r} is not supported; choose one of {', '.join(table)}")
    return table[name]


def _start_latent(
    model: SdxlModel, latent: torch.Tensor, sigmas: list[float], generator: torch.Generator
) -> torch.Tensor:
    """The model-space latent plus noise at the first sigma."""
    import torch

    noise = torch.randn(latent.shape, generator=generator, dtype=torch.float32)
    sigma = sigmas[0]
    # from pure noise the model expects unit-variance x / sqrt(1 + sigma²) (ComfyUI's max_denoise)
    full = sigma >= model.schedule.sigma_max * (1 - 1e-5)
    scale = math.sqrt(1.0 + sigma * sigma) if full else sigma
    start = latent.float() * model.latent_scale + noise * scale
    return start.to(model.device)


class _Denoiser:
    """``(x, sigma) -> x0`` for one KSampler run: the UNet as an ε-predictor plus classifier-free guidance."""

    def __init__(
        self, model: SdxlModel, positive: SdxlConditioning, negative: SdxlConditioning, cfg: float, batch: int
    ) -> None:
        self.model = model
        self.cfg = cfg
        # cfg 1 makes the negative prompt's term vanish: skip its UNet pass
        conds = [positive] if cfg == 1.0 else [negative, positive]
        self.conds = [self._prepare(c, batch) for c in conds]

    def _prepare(self, cond: SdxlConditioning, batch: int) -> dict[str, torch.Tensor]:
        import torch

        m = self.model
        return {
            "embeds": cond.embeds.to(m.device, m.dtype).expand(batch, -1, -1),
            "pooled": cond.pooled.to(m.device, m.dtype).expand(batch, -1),
            "time_ids": torch.tensor([cond.time_ids()], device=m.device, dtype=m.dtype).expand(batch, -1),
        }

    def _eps(self, x_in: torch.Tensor, t: float, conds: list[dict[str, torch.Tensor]]) -> torch.Tensor:
        import torch

        m = self.model
        n = len(conds)
        out = m.unet(
            x_in.repeat(n, 1, 1, 1),
            torch.full((x_in.shape[0] * n,), t, device=m.device, dtype=torch.float32),
            encoder_hidden_states=torch.cat([c["embeds"] for c in conds]),
            added_cond_kwargs={
                "text_embeds": torch.cat([c["pooled"] for c in conds]),
                "time_ids": torch.cat([c["time_ids"] for c in conds]),
            },
        ).sample
        return out.float()

    def __call__(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        m = self.model
        x_in = (x / math.sqrt(sigma * sigma + 1.0)).to(m.dtype)
        t = m.schedule.timestep(sigma)
        lengths = {c["embeds"].shape[1] for c in self.conds}
        if len(lengths) == 1:  # one batched UNet pass for both prompts
            eps = self._eps(x_in, t, self.conds).chunk(len(self.conds))
        else:  # prompts of different window counts cannot share a batch
            eps = tuple(self._eps(x_in, t, [c]) for c in self.conds)
        denoised = [x - e * sigma for e in eps]
        if len(denoised) == 1:
            return denoised[0]
        uncond, cond = denoised
        return uncond + (cond - uncond) * self.cfg
