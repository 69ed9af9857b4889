"""SDXL-family checkpoint, text and latent nodes with ComfyUI's names, inputs and outputs.

    CheckpointLoaderSimple(ckpt_name)                        -> (MODEL, CLIP, VAE)
    CLIPTextEncode(text, clip)                               -> (CONDITIONING,)
    CLIPSetLastLayer(clip, stop_at_clip_layer)               -> (CLIP,)
    EmptyLatentImage(width, height, batch_size)              -> (LATENT,)
    ModelSamplingContinuousEDM(model, sampling, sigma_max, sigma_min) -> (MODEL,)

Types (documented so that other node families can build on them):

- MODEL: ``engine.sampling.diffusion_model.DiffusionModel`` — the UNet, its ``ModelSampling``
  (discrete eps for SDXL, EDM for Playground v2.5, read from the checkpoint) and latent format.
  Immutable: patching nodes return a copy.
- CLIP: ``SdxlClip`` — both text encoders and the hidden layer to read (``CLIPSetLastLayer``).
- VAE: ``nodes.vae.Vae`` — the autoencoder, its device and number format (``VAEDecode`` is there).
- CONDITIONING: ``engine.sampling.conditioning.Conditioning``, a tuple of ``CondPart``.
- LATENT: ComfyUI's ``{"samples": tensor (B, 4, H/8, W/8)}`` in the VAE's own (unscaled) latent
  space, on the CPU in float32.

The checkpoint is an original-layout single file under ``MODELS_DIR/checkpoints`` (``nets/sdxl_loader``).
torch, diffusers and transformers are imported on first use, so the module loads without them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from visionatrix.engine.context import NodeContext
from visionatrix.engine.model_inputs import ModelInput
from visionatrix.engine.nodes.vae import Vae
from visionatrix.engine.registry import node
from visionatrix.errors import InvalidInput, ModelMissing

if TYPE_CHECKING:
    from visionatrix.engine.sampling.conditioning import Conditioning
    from visionatrix.engine.sampling.diffusion_model import DiffusionModel

CHECKPOINT_FOLDER = "checkpoints"
EMBEDDING_FOLDER = "embeddings"
LATENT_CHANNELS = 4
LATENT_FACTOR = 8  # pixels per latent cell, each way
EDM_SAMPLINGS = ("v_prediction", "edm", "edm_playground_v2.5", "eps")


@dataclass(frozen=True)
class SdxlClip:
    """CLIP: both SDXL text encoders and the hidden layer their states are read from (-2: penultimate)."""

    text_encoder: Any
    text_encoder_2: Any
    layer: int = -2
    identity: str = ""  # what the weights are, as ``DiffusionModel.identity``


@node("CheckpointLoaderSimple")
class CheckpointLoaderSimple:
    # the loader reads the model sampling from the file's marker tensors (sdxl_loader.detect_sampling)
    # ... and Flux's all-in-one checkpoints (Comfy-Org's flux1-dev-fp8) through the Flux loaders
    model_inputs = {
        "ckpt_name": ModelInput(CHECKPOINT_FOLDER, {"sdxl", "sdxl-vpred", "playground-v2.5", "flux"})
    }

    def run(self, ctx: NodeContext, ckpt_name: str) -> tuple[DiffusionModel, SdxlClip, Vae]:
        import torch

        from visionatrix.engine.compiled import OPTION, maybe_compiled
        from visionatrix.engine.nets import sdxl_loader
        from visionatrix.engine.sampling.diffusion_model import DiffusionModel
        from visionatrix.models.architecture import file_kind
        from visionatrix.models.device import choose_precision

        path = ctx.models.path(CHECKPOINT_FOLDER, ckpt_name)
        if file_kind(path) == "flux":
            from visionatrix.engine.nodes.flux import load_checkpoint

            return load_checkpoint(ctx, path)  # type: ignore[return-value]
        dtype = getattr(torch, choose_precision(ctx.device, ctx.precision))
        shapes = sdxl_loader.read_shapes(path)
        size = sdxl_loader.loaded_size(shapes, dtype, sdxl_loader.vae_dtype_for(dtype, ctx.device))
        stat = path.stat()
        compile_mode = ctx.env.options.get(OPTION)
        key = f"sdxl:{path}:{stat.st_size}:{stat.st_mtime_ns}:{ctx.device}:{dtype}:{compile_mode}"

        def load() -> sdxl_loader.SdxlComponents:
            parts = sdxl_loader.load_checkpoint(path, ctx.device, dtype, lambda i, n: ctx.progress(i / n))
            parts.unet = maybe_compiled(parts.unet, ctx.env.options)
            return parts

        parts = ctx.models.cached(key, load, size)
        return (
            DiffusionModel(
                parts.unet, parts.sampling, parts.latent_format, parts.device, parts.dtype, f"{key}#unet"
            ),
            SdxlClip(parts.text_encoder, parts.text_encoder_2, identity=f"{key}#clip"),
            Vae(parts.vae, parts.device, parts.vae_dtype),
        )


def find_embedding(ctx: NodeContext, name: str) -> Path | None:
    """The file of textual-inversion embedding ``name`` under ``MODELS_DIR/embeddings``, as ComfyUI
    looks for it (the name itself, then with .safetensors, .pt, .bin), or None."""
    if ".." in Path(name).parts or Path(name).is_absolute():
        return None  # never outside the folder
    for candidate in (name, f"{name}.safetensors", f"{name}.pt", f"{name}.bin"):
        try:
            return ctx.models.path(EMBEDDING_FOLDER, candidate)
        except (ModelMissing, OSError):
            continue
    return None


@node("CLIPTextEncode")
class CLIPTextEncode:
    def run(self, ctx: NodeContext, text: str, clip: SdxlClip) -> tuple[Conditioning]:
        own = getattr(clip, "conditioning", None)  # other families' CLIPs (Flux) encode themselves
        if own is not None:
            return (own(str(text), ctx.check_cancel),)
        from visionatrix.engine.nets.sdxl_text import encode_prompt
        from visionatrix.engine.sampling.conditioning import CondPart

        embeds, pooled = encode_prompt(
            clip.text_encoder,
            clip.text_encoder_2,
            str(text),
            clip.layer,
            ctx.check_cancel,
            lambda name: find_embedding(ctx, name),
        )
        return ((CondPart(embeds, pooled),),)


@node("CLIPSetLastLayer")
class CLIPSetLastLayer:
    def run(self, ctx: NodeContext, clip: SdxlClip, stop_at_clip_layer: int = -1) -> tuple[SdxlClip]:
        layer = int(stop_at_clip_layer)
        if not -24 <= layer <= -1:
            raise InvalidInput(f"CLIPSetLastLayer: stop_at_clip_layer must be in -24..-1, got {layer}")
        return (dataclasses.replace(clip, layer=layer),)


@node("ModelSamplingContinuousEDM")
class ModelSamplingContinuousEDM:
    """``model`` on EDM's continuous sigmas; ``edm_playground_v2.5`` also sets Playground's latent format."""

    def run(
        self,
        ctx: NodeContext,
        model: DiffusionModel,
        sampling: str = "v_prediction",
        sigma_max: float = 120.0,
        sigma_min: float = 0.002,
    ) -> tuple[DiffusionModel]:
        from visionatrix.engine.sampling import latent_formats, model_sampling

        if sampling not in EDM_SAMPLINGS:
            raise InvalidInput(
                f"ModelSamplingContinuousEDM: sampling {sampling!r} is not supported; "
                f"choose one of {', '.join(EDM_SAMPLINGS)}"
            )
        if not 0 < float(sigma_min) < float(sigma_max):
            raise InvalidInput(
                f"ModelSamplingContinuousEDM: need 0 < sigma_min < sigma_max, got {sigma_min}, {sigma_max}"
            )
        prediction = {"edm_playground_v2.5": "edm"}.get(sampling, sampling)
        sigma_data = 0.5 if prediction == "edm" else 1.0
        patched = model_sampling.continuous_edm(float(sigma_min), float(sigma_max), prediction, sigma_data)
        fmt = latent_formats.PLAYGROUND_2_5 if sampling == "edm_playground_v2.5" else model.latent_format
        return (dataclasses.replace(model, sampling=patched, latent_format=fmt),)


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
