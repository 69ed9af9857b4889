"""VAE nodes with ComfyUI's names, inputs and outputs.

    VAELoader(vae_name)            -> (VAE,)     file: MODELS_DIR/vae/<vae_name>
    VAEDecode(samples, vae)        -> (IMAGE,)
    VAEEncode(pixels, vae)         -> (LATENT,)

VAE is ``Vae``: an autoencoder with diffusers' ``AutoencoderKL`` interface (``encode(x).latent_dist``,
``decode(z).sample``), its device and number format. ``CheckpointLoaderSimple`` gives the one
inside a checkpoint; ``VAELoader`` reads a standalone file and dispatches on the file's
architecture (``models.architecture``, read from its header) through ``VAE_LOADERS``: a model
family adds its VAE by adding an entry there, and the flows using it become installable.

LATENT is the VAE's own latent space (the model's latent format is applied by the sampler), so
decoding and encoding are the plain autoencoder, as in ComfyUI: ``VAEDecode`` maps the output
from [-1, 1] to [0, 1]; ``VAEEncode`` crops the image to multiples of 8 (centred, ComfyUI's
``vae_encode_crop_pixels``), maps it to [-1, 1] and returns the posterior's mean (ComfyUI stopped
sampling from the posterior in 2025, so the latent does not depend on a random draw).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from visionatrix.engine.context import NodeContext
from visionatrix.engine.model_inputs import ModelInput, resolve_by_kind
from visionatrix.engine.registry import node
from visionatrix.errors import InvalidInput

if TYPE_CHECKING:
    import torch

VAE_FOLDER = "vae"
SCALE = 8  # pixels per latent cell, each way (every VAE loaded here)


@dataclass(frozen=True)
class Vae:
    """VAE: the autoencoder that turns latents into pixels and back."""

    vae: Any
    device: str
    dtype: torch.dtype


def _load_sd_vae(ctx: NodeContext, path: Path) -> Vae:
    import torch

    from visionatrix.engine.nets import sd_vae, sdxl_loader
    from visionatrix.models.device import choose_precision

    dtype = sdxl_loader.vae_dtype_for(getattr(torch, choose_precision(ctx.device, ctx.precision)), ctx.device)
    stat = path.stat()
    key = f"sd-vae:{path}:{stat.st_size}:{stat.st_mtime_ns}:{ctx.device}:{dtype}"
    module = ctx.models.cached(
        key, lambda: sd_vae.load_vae(path, ctx.device, dtype), sd_vae.loaded_size(path, dtype)
    )
    return Vae(module, ctx.device, dtype)


def _load_flux_vae(ctx: NodeContext, path: Path) -> Vae:
    from visionatrix.engine.nodes.flux import load_vae

    return load_vae(ctx, path)


# architecture kind (models.architecture.KINDS) -> how a file of that kind becomes a VAE
VAE_LOADERS: dict[str, Callable[[NodeContext, Path], Vae]] = {
    "sd-vae": _load_sd_vae,
    "flux-vae": _load_flux_vae,
}


@node("VAELoader")
class VAELoader:
    model_inputs = {"vae_name": ModelInput(VAE_FOLDER, VAE_LOADERS)}

    def run(self, ctx: NodeContext, vae_name: str) -> tuple[Vae]:
        path, load = resolve_by_kind(ctx.models, VAE_FOLDER, vae_name, VAE_LOADERS, "VAELoader")
        return (load(ctx, path),)


@node("VAEDecode")
class VAEDecode:
    def run(self, ctx: NodeContext, samples: dict[str, Any], vae: Vae) -> tuple[np.ndarray]:
        import torch

        latents = samples["samples"]
        images = []
        with torch.inference_mode():
            # one image at a time: decoding is the memory peak of the whole flow
            for i in range(latents.shape[0]):
                ctx.progress(i / latents.shape[0])
                decoded = vae.vae.decode(latents[i : i + 1].to(vae.device, vae.dtype)).sample
                images.append(((decoded.float() + 1.0) / 2.0).clamp(0.0, 1.0).permute(0, 2, 3, 1).cpu())
        ctx.progress(1.0)
        return (torch.cat(images).numpy().astype(np.float32, copy=False),)


def crop_to_scale(pixels: np.ndarray) -> np.ndarray:
    """(B, H, W, C) cropped to multiples of ``SCALE``, the remainder split as ComfyUI splits it."""
    height, width = (pixels.shape[1] // SCALE) * SCALE, (pixels.shape[2] // SCALE) * SCALE
    if height == 0 or width == 0:
        raise InvalidInput(f"VAEEncode: the image is {pixels.shape[2]}x{pixels.shape[1]}, smaller than 8x8")
    top, left = (pixels.shape[1] % SCALE) // 2, (pixels.shape[2] % SCALE) // 2
    return pixels[:, top : top + height, left : left + width]


@node("VAEEncode")
class VAEEncode:
    def run(self, ctx: NodeContext, pixels: np.ndarray, vae: Vae) -> tuple[dict[str, Any]]:
        import torch

        images = crop_to_scale(np.asarray(pixels, dtype=np.float32)[..., :3])
        latents = []
        with torch.inference_mode():
            for i in range(images.shape[0]):
                ctx.progress(i / images.shape[0])
                x = torch.from_numpy(images[i : i + 1]).permute(0, 3, 1, 2) * 2.0 - 1.0
                posterior = vae.vae.encode(x.to(vae.device, vae.dtype)).latent_dist
                latents.append(posterior.mean.float().cpu())
        ctx.progress(1.0)
        return ({"samples": torch.cat(latents)},)
