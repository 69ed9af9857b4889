"""Flux.1 loaders with ComfyUI's names, inputs and outputs.

    UNETLoader(unet_name, weight_dtype)                      -> (MODEL,)
    DualCLIPLoader(clip_name1, clip_name2, type, device)     -> (CLIP,)   type "flux": T5-XXL + CLIP-L

and the loading functions other node families call for Flux files: ``load_vae`` (the VAE of
``ae.safetensors``, for VAELoader) and ``load_checkpoint`` (Comfy-Org's all-in-one files, for
CheckpointLoaderSimple).

Types: MODEL is a ``DiffusionModel`` whose network is a ``nets.flux_net.FluxNet``, with Flux's
sampling (dev / Kontext / Fill: ``ModelSamplingFlux`` shift 1.15; schnell: discrete flow) and
latent format; CLIP a ``nets.flux_text.FluxClip`` (``CLIPTextEncode`` asks it for a conditioning);
VAE the ``nodes.vae.Vae`` record every VAE uses (VAEDecode/VAEEncode work unchanged).

Every loader checks the memory it needs before reading a byte (``nets/memory``) and caches what
it loaded under the file's identity, device and dtypes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from visionatrix.engine.context import NodeContext
from visionatrix.engine.model_inputs import ModelInput
from visionatrix.engine.registry import node
from visionatrix.errors import InvalidInput

if TYPE_CHECKING:
    from visionatrix.engine.nets.flux_text import FluxClip
    from visionatrix.engine.nodes.vae import Vae
    from visionatrix.engine.sampling.diffusion_model import DiffusionModel

UNET_FOLDER = "diffusion_models"
TEXT_ENCODER_FOLDER = "text_encoders"
VAE_FOLDER = "vae"
TEXT_ENCODER_KINDS = frozenset({"t5-v1.1", "clip-l"})
CLIP_TYPES = ("flux",)
TEXT_WORKING_BYTES = 1 << 30


def _file_key(kind: str, path: Path, *parts: Any) -> str:
    stat = path.stat()
    return ":".join(str(p) for p in (kind, path, stat.st_size, stat.st_mtime_ns, *parts))


def load_model(ctx: NodeContext, path: Path, weight_dtype: str = "default") -> DiffusionModel:
    """The Flux transformer of ``path`` as a MODEL, loaded once per file, device and dtypes."""
    from visionatrix.engine.nets import flux_loader, memory
    from visionatrix.engine.nets.flux_net import FluxNet
    from visionatrix.engine.sampling import latent_formats, model_sampling
    from visionatrix.engine.sampling.diffusion_model import DiffusionModel

    spec = flux_loader.read_spec(path)
    compute = flux_loader.compute_dtype(ctx.device, ctx.precision)
    storage = flux_loader.storage_dtype(str(weight_dtype), path, compute)
    key = _file_key("flux", path, ctx.device, storage, compute)

    def load() -> FluxNet:
        model = flux_loader.build_meta(spec)
        needed = flux_loader.loaded_bytes(model, storage, compute) + flux_loader.WORKING_BYTES
        hint = "weight_dtype fp8_e4m3fn halves the transformer's memory" if storage.itemsize > 1 else ""
        memory.ensure_fits(
            f"Flux transformer {path.name} ({str(storage).removeprefix('torch.')})",
            needed,
            ctx.device,
            ctx.models,
            hint,
        )
        model = flux_loader.fill(
            model, path, spec, ctx.device, storage, compute, lambda i, n: ctx.progress(i / n)
        )
        return FluxNet(model, spec.in_channels, spec.out_channels, ctx.device, compute)

    net = ctx.models.cached(key, load)
    # schnell (no guidance embedder) was distilled on plain flow sigmas; the others use Flux's shift
    sampling = model_sampling.flux(1.15) if spec.shape.guidance else model_sampling.discrete_flow(1.0, 1.0)
    return DiffusionModel(net, sampling, latent_formats.FLUX, ctx.device, compute, key)


def _text_home(ctx: NodeContext, device_choice: str) -> tuple[str, str]:
    """(where the encoders run, where they are kept): GPUs borrow them from the CPU per prompt."""
    run_on = "cpu" if device_choice == "cpu" else ctx.device
    return run_on, "cpu"


def load_clip(ctx: NodeContext, t5_path: Path, clip_path: Path, *, device_choice: str = "default",
              t5_prefix: str = "", clip_prefix: str = "") -> FluxClip:  # fmt: skip
    """Flux's CLIP (T5 + CLIP-L) from the two files (or one checkpoint with prefixes)."""
    from visionatrix.engine.nets import flux_loader, flux_text, memory

    run_on, home = _text_home(ctx, device_choice)
    compute = flux_loader.compute_dtype(run_on, ctx.precision)
    key = _file_key("flux-clip", t5_path, t5_prefix, clip_path, clip_prefix, run_on, compute)

    def load() -> FluxClip:
        needed = t5_path.stat().st_size + clip_path.stat().st_size + TEXT_WORKING_BYTES
        memory.ensure_fits("Flux text encoders (T5-XXL + CLIP-L)", needed, home, ctx.models)
        t5, _ = flux_text.load_t5(t5_path, home, compute, t5_prefix)
        ctx.progress(0.8)
        clip_l, _ = flux_text.load_clip_l(clip_path, home, compute, clip_prefix)
        return flux_text.FluxClip(t5, clip_l, run_on, home, key)

    return ctx.models.cached(key, load)


def load_vae(ctx: NodeContext, path: Path, prefix: str | None = None) -> Vae:
    """The Flux autoencoder of ``path`` (``ae.safetensors``, or a checkpoint's ``vae.``) as a VAE."""
    from visionatrix.engine.nets import flux_loader, flux_vae, sdxl_loader
    from visionatrix.engine.nodes.vae import Vae

    dtype = sdxl_loader.vae_dtype_for(flux_loader.compute_dtype(ctx.device, ctx.precision), ctx.device)
    key = _file_key("flux-vae", path, prefix, ctx.device, dtype)
    vae = ctx.models.cached(key, lambda: flux_vae.load_vae(path, ctx.device, dtype, prefix)[0])
    return Vae(vae, ctx.device, dtype)


def load_checkpoint(ctx: NodeContext, path: Path) -> tuple[DiffusionModel, FluxClip, Vae]:
    """An all-in-one Flux checkpoint (``model.diffusion_model.``, ``text_encoders.*``, ``vae.``)."""
    from visionatrix.engine.nets import flux_text, flux_vae

    model = load_model(ctx, path, "default")
    clip = load_clip(
        ctx,
        path,
        path,
        t5_prefix=flux_text.T5_CHECKPOINT_PREFIX,
        clip_prefix=flux_text.CLIP_CHECKPOINT_PREFIX,
    )
    return model, clip, load_vae(ctx, path, flux_vae.CHECKPOINT_PREFIX)


@node("UNETLoader")
class UNETLoader:
    model_inputs = {"unet_name": ModelInput(UNET_FOLDER, {"flux"})}

    def run(self, ctx: NodeContext, unet_name: str, weight_dtype: str = "default") -> tuple[DiffusionModel]:
        return (load_model(ctx, ctx.models.path(UNET_FOLDER, unet_name), str(weight_dtype)),)


@node("DualCLIPLoader")
class DualCLIPLoader:
    model_inputs = {
        "clip_name1": ModelInput(TEXT_ENCODER_FOLDER, TEXT_ENCODER_KINDS),
        "clip_name2": ModelInput(TEXT_ENCODER_FOLDER, TEXT_ENCODER_KINDS),
    }

    def run(
        self, ctx: NodeContext, clip_name1: str, clip_name2: str, type: str = "flux", device: str = "default"
    ) -> tuple[FluxClip]:
        from visionatrix.engine.nets.flux_text import which_encoder

        if type not in CLIP_TYPES:
            raise InvalidInput(
                f"DualCLIPLoader: type {type!r} is not supported here; supported: {', '.join(CLIP_TYPES)}"
            )
        if device not in ("default", "cpu"):
            raise InvalidInput(f"DualCLIPLoader: device {device!r} is not one of default, cpu")
        paths = [ctx.models.path(TEXT_ENCODER_FOLDER, name) for name in (clip_name1, clip_name2)]
        found = {which_encoder(p): p for p in paths}
        if set(found) != {"t5", "clip_l"}:
            raise InvalidInput(
                f"DualCLIPLoader (flux) needs one T5-XXL and one CLIP-L file, "
                f"got {clip_name1} and {clip_name2}"
            )
        return (load_clip(ctx, found["t5"], found["clip_l"], device_choice=device),)
