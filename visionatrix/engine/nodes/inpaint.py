"""Inpainting and outpainting nodes with ComfyUI's names, inputs and rules.

    InpaintModelConditioning(positive, negative, vae, pixels, mask, noise_mask)
        -> (positive, negative, LATENT)   the image's latent (with ``noise_mask``), and the masked
           image's latent + mask on both conditionings for inpainting models (Flux Fill)
    DifferentialDiffusion(model, strength)  -> (MODEL,)  a soft mask becomes a per-step hard one
    ImagePadForOutpaint(image, left, top, right, bottom, feathering) -> (IMAGE, MASK)

MASK is float32 (B, H, W) in [0, 1], 1 = repaint. Pixels are encoded as VAEEncode does (ComfyUI's
``VAE.encode``: centre-cropped to multiples of 8, the posterior's mean).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np

from visionatrix.engine.context import NodeContext
from visionatrix.engine.nodes.image_io import as_image_batch
from visionatrix.engine.registry import node
from visionatrix.errors import InvalidInput

if TYPE_CHECKING:
    import torch

    from visionatrix.engine.nodes.vae import Vae
    from visionatrix.engine.sampling.conditioning import Conditioning
    from visionatrix.engine.sampling.diffusion_model import DiffusionModel

FACTOR = 8
MAX_PAD = 16384


def as_mask(mask: Any, name: str = "mask") -> torch.Tensor:
    """A MASK (B, H, W) (or (H, W), or (B, 1, H, W)) as a float32 torch tensor."""
    import torch

    m = torch.as_tensor(np.asarray(mask, dtype=np.float32))
    if m.ndim == 2:
        m = m[None]
    if m.ndim == 4 and m.shape[1] == 1:
        m = m[:, 0]
    if m.ndim != 3 or 0 in m.shape:
        raise InvalidInput(f"'{name}' must be a mask (B, H, W), got shape {tuple(m.shape)}")
    return m


def encode_pixels(ctx: NodeContext, vae: Vae, pixels: torch.Tensor) -> torch.Tensor:
    """(B, H, W, C) images in [0, 1] -> the VAE's latents (B, C', H/8, W/8), CPU float32 (VAEEncode)."""
    from visionatrix.engine.nodes.vae import VAEEncode

    return VAEEncode().run(ctx, pixels.numpy(), vae)[0]["samples"]


@node("InpaintModelConditioning")
class InpaintModelConditioning:
    def run(
        self,
        ctx: NodeContext,
        positive: Conditioning,
        negative: Conditioning,
        vae: Vae,
        pixels: Any,
        mask: Any,
        noise_mask: bool = True,
    ) -> tuple[Conditioning, Conditioning, dict[str, Any]]:
        import torch

        from visionatrix.engine.nodes.vix_inputs import as_bool

        images = torch.from_numpy(as_image_batch(pixels, "pixels").copy())
        h, w = images.shape[1:3]
        m = as_mask(mask)
        m = torch.nn.functional.interpolate(m.reshape((-1, 1, *m.shape[-2:])), size=(h, w), mode="bilinear")
        crop_h, crop_w = h // FACTOR * FACTOR, w // FACTOR * FACTOR
        masked = images.clone()
        if (crop_h, crop_w) != (h, w):
            top, left = (h % FACTOR) // 2, (w % FACTOR) // 2
            masked = masked[:, top : top + crop_h, left : left + crop_w, :]
            m = m[:, :, top : top + crop_h, left : left + crop_w]
        keep = (1.0 - m.round()).squeeze(1)
        for c in range(min(3, masked.shape[-1])):
            masked[..., c] = (masked[..., c] - 0.5) * keep + 0.5
        concat_latent = encode_pixels(ctx, vae, masked)
        latent: dict[str, Any] = {"samples": encode_pixels(ctx, vae, images)}
        if as_bool(noise_mask, "noise_mask"):
            latent["noise_mask"] = m
        extra = {"concat_latent": concat_latent, "concat_mask": m}
        return (
            tuple(dataclasses.replace(p, **extra) for p in positive),
            tuple(dataclasses.replace(p, **extra) for p in negative),
            latent,
        )


@node("DifferentialDiffusion")
class DifferentialDiffusion:
    """Each step repaints where the mask is at least the fraction of the schedule still ahead."""

    def run(self, ctx: NodeContext, model: DiffusionModel, strength: float = 1.0) -> tuple[DiffusionModel]:
        strength = float(strength)
        if not 0.0 <= strength <= 1.0:
            raise InvalidInput(f"DifferentialDiffusion: strength must be in [0, 1], got {strength}")
        ms = model.sampling

        def step_mask(sigma: torch.Tensor, mask: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
            sigma_to = ms.sigma_min.to(sigmas.device)
            if sigmas[-1] > sigma_to:
                sigma_to = sigmas[-1]
            ts_from, ts_to = ms.timestep(sigmas[0]), ms.timestep(sigma_to)
            threshold = (ms.timestep(sigma[0]) - ts_to) / (ts_from - ts_to)
            binary = (mask >= threshold).to(mask.dtype)
            if strength and strength < 1:
                return strength * binary + (1 - strength) * mask
            return binary

        return (dataclasses.replace(model, denoise_mask_fn=step_mask),)


@node("ImagePadForOutpaint")
class ImagePadForOutpaint:
    """Grey (0.5) borders around the image and a mask of them, feathered ``feathering`` pixels inwards."""

    def run(
        self,
        ctx: NodeContext,
        image: Any,
        left: Any = 0,
        top: Any = 0,
        right: Any = 0,
        bottom: Any = 0,
        feathering: Any = 40,
    ) -> tuple[np.ndarray, np.ndarray]:
        batch = as_image_batch(image)
        sides = {
            name: _pad(name, v)
            for name, v in zip(("left", "top", "right", "bottom"), (left, top, right, bottom), strict=True)
        }
        left, top, right, bottom = sides["left"], sides["top"], sides["right"], sides["bottom"]
        feather = _pad("feathering", feathering)
        b, h, w, c = batch.shape
        out = np.full((b, h + top + bottom, w + left + right, c), 0.5, dtype=np.float32)
        out[:, top : top + h, left : left + w] = batch
        mask = np.ones((h + top + bottom, w + left + right), dtype=np.float32)
        inner = np.zeros((h, w), dtype=np.float32)
        if 0 < feather and feather * 2 < h and feather * 2 < w:
            rows, cols = np.arange(h)[:, None], np.arange(w)[None, :]
            d = np.minimum.reduce(
                [
                    np.broadcast_to(rows if top else h, (h, w)),
                    np.broadcast_to(h - rows if bottom else h, (h, w)),
                    np.broadcast_to(cols if left else w, (h, w)),
                    np.broadcast_to(w - cols if right else w, (h, w)),
                ]
            )
            v = (feather - d) / feather
            inner = np.where(d < feather, v * v, 0.0).astype(np.float32)
        mask[top : top + h, left : left + w] = inner
        return out, mask[None]


def _pad(name: str, value: Any) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = -1
    if not 0 <= number <= MAX_PAD:
        raise InvalidInput(
            f"ImagePadForOutpaint: {name} must be a whole number from 0 to {MAX_PAD}, got {value!r}"
        )
    return number
