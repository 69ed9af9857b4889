"""An SDXL single-file checkpoint (original Stability layout) → diffusers / transformers components.

Fully offline: the component configs come from ``visionatrix/builtin/sdxl`` (SDXL-base values),
adjusted only where the file's tensor shapes say otherwise, so a tiny test checkpoint and the
6.9 GB published files go through the same code. Each component is built on the ``meta`` device
(no random init) and its weights are assigned straight from the file, one tensor at a time, cast
to the compute dtype as they are read: peak memory is about the loaded model, not twice it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from visionatrix.engine.nets import sdxl_keys as keys
from visionatrix.errors import InvalidInput

if TYPE_CHECKING:
    import torch

    from visionatrix.engine.sampling.latent_formats import LatentFormat
    from visionatrix.engine.sampling.model_sampling import ModelSampling

BUILTIN_DIR = Path(__file__).resolve().parents[2] / "builtin" / "sdxl"
COMPONENTS = ("unet", "vae", "text_encoder", "text_encoder_2")
_HEAD_DIM = 64  # SDXL's UNet and both text encoders use 64-wide attention heads
_MAX_GROUPS = 32

Shapes = dict[str, tuple[int, ...]]


@dataclass
class SdxlComponents:
    """Everything one checkpoint gives, placed on ``device``."""

    unet: Any  # diffusers UNet2DConditionModel
    vae: Any  # diffusers AutoencoderKL
    text_encoder: Any  # transformers CLIPTextModel (ViT-L)
    text_encoder_2: Any  # transformers CLIPTextModelWithProjection (OpenCLIP ViT-bigG)
    sampling: ModelSampling  # how the UNet sees noise (discrete eps for SDXL, EDM for Playground v2.5)
    latent_format: LatentFormat  # VAE latents <-> the space the UNet denoises in
    device: str
    dtype: torch.dtype
    vae_dtype: torch.dtype


def builtin_config(component: str) -> dict[str, Any]:
    name = "scheduler/scheduler_config.json" if component == "scheduler" else f"{component}/config.json"
    return json.loads((BUILTIN_DIR / name).read_text(encoding="utf-8"))


# --- reading the file's layout -------------------------------------------------------------------


def read_shapes(path: Path) -> Shapes:
    """Canonical tensor names → shapes, from the safetensors header; bookkeeping tensors left out."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return {
            keys.canonical_name(name): tuple(f.get_slice(name).get_shape())
            for name in f.keys()
            if not keys.is_bookkeeping(name)
        }


def _count(shapes: Shapes, pattern: str) -> int:
    regex = re.compile(pattern)
    return len({m[1] for name in shapes if (m := regex.match(name))})


def _heads(width: int) -> int:
    return width // _HEAD_DIM if width % _HEAD_DIM == 0 else 1


def group_count(channels: list[int]) -> int:
    # 32 for SDXL; tiny test models with narrower channels need fewer groups
    return math.gcd(_MAX_GROUPS, *channels)


def infer_configs(shapes: Shapes) -> dict[str, dict[str, Any]]:
    """The component configs a checkpoint with these tensor shapes needs (SDXL-base where they agree)."""
    text_encoder_2 = _text_encoder_2_config(shapes)
    return {
        "unet": _unet_config(shapes, pooled_dim=text_encoder_2["projection_dim"]),
        "vae": vae_config(shapes),
        "text_encoder": _text_encoder_config(shapes),
        "text_encoder_2": text_encoder_2,
    }


def _unet_config(shapes: Shapes, pooled_dim: int) -> dict[str, Any]:
    p = keys.UNET_PREFIX
    levels = 1 + _count(shapes, rf"{p}input_blocks\.(\d+)\.0\.op\.weight")
    last_index = max(int(m[1]) for n in shapes if (m := re.match(rf"{p}input_blocks\.(\d+)\.", n)))
    span = (last_index + 1) // levels
    firsts = [1 + level * span for level in range(levels)]
    channels = [shapes[f"{p}input_blocks.{i}.0.out_layers.3.weight"][0] for i in firsts]
    depths = [_count(shapes, rf"{p}input_blocks\.{i}\.1\.transformer_blocks\.(\d+)\.") for i in firsts]
    mid_depth = _count(shapes, rf"{p}middle_block\.1\.transformer_blocks\.(\d+)\.")
    if mid_depth != depths[-1]:
        raise InvalidInput(
            f"UNet middle block has {mid_depth} transformer blocks, its last level {depths[-1]}"
        )
    time_dim, adm_dim = shapes[f"{p}label_emb.0.0.weight"]
    proj_in = next(s for n, s in shapes.items() if n.startswith(p) and n.endswith(".proj_in.weight"))
    cross_dim = next(s for n, s in shapes.items() if n.startswith(p) and n.endswith("attn2.to_k.weight"))[1]
    config = builtin_config("unet")
    config.update(
        block_out_channels=channels,
        layers_per_block=span - 1,
        # a level without attention ignores its entry; SDXL-base writes 1 there
        transformer_layers_per_block=[max(d, 1) for d in depths],
        down_block_types=["CrossAttnDownBlock2D" if d else "DownBlock2D" for d in depths],
        up_block_types=["CrossAttnUpBlock2D" if d else "UpBlock2D" for d in reversed(depths)],
        attention_head_dim=[_heads(c) for c in channels],
        cross_attention_dim=cross_dim,
        in_channels=shapes[f"{p}input_blocks.0.0.weight"][1],
        out_channels=shapes[f"{p}out.2.weight"][0],
        norm_num_groups=group_count(channels),
        use_linear_projection=len(proj_in) == 2,
        projection_class_embeddings_input_dim=adm_dim,
        # six size numbers (original size, crop, target size), each embedded, follow the pooled text
        addition_time_embed_dim=(adm_dim - pooled_dim) // 6,
        time_embedding_dim=None if time_dim == 4 * channels[0] else time_dim,
    )
    return config


def vae_config(shapes: Shapes, p: str = keys.VAE_PREFIX) -> dict[str, Any]:
    """The AutoencoderKL config for the VAE tensors under prefix ``p`` (SDXL's VAE where they agree)."""
    levels = _count(shapes, rf"{p}encoder\.down\.(\d+)\.block\.0\.conv1\.weight")
    channels = [shapes[f"{p}encoder.down.{i}.block.0.conv1.weight"][0] for i in range(levels)]
    config = builtin_config("vae")
    config.update(
        block_out_channels=channels,
        down_block_types=["DownEncoderBlock2D"] * levels,
        up_block_types=["UpDecoderBlock2D"] * levels,
        layers_per_block=_count(shapes, rf"{p}encoder\.down\.0\.block\.(\d+)\.conv1\.weight"),
        latent_channels=shapes[f"{p}post_quant_conv.weight"][0],
        in_channels=shapes[f"{p}encoder.conv_in.weight"][1],
        out_channels=shapes[f"{p}decoder.conv_out.weight"][0],
        norm_num_groups=group_count(channels),
    )
    return config


def _text_encoder_config(shapes: Shapes) -> dict[str, Any]:
    p = keys.CLIP_L_PREFIX
    vocab, width = shapes[f"{p}embeddings.token_embedding.weight"]
    config = builtin_config("text_encoder")
    config.update(
        vocab_size=vocab,
        hidden_size=width,
        num_attention_heads=_heads(width),
        max_position_embeddings=shapes[f"{p}embeddings.position_embedding.weight"][0],
        num_hidden_layers=_count(shapes, rf"{p}encoder\.layers\.(\d+)\.layer_norm1\.weight"),
        intermediate_size=shapes[f"{p}encoder.layers.0.mlp.fc1.weight"][0],
    )
    return config


def _text_encoder_2_config(shapes: Shapes) -> dict[str, Any]:
    p = keys.CLIP_G_PREFIX
    vocab, width = shapes[f"{p}token_embedding.weight"]
    config = builtin_config("text_encoder_2")
    config.update(
        vocab_size=vocab,
        hidden_size=width,
        num_attention_heads=_heads(width),
        max_position_embeddings=shapes[f"{p}positional_embedding"][0],
        num_hidden_layers=_count(shapes, rf"{p}transformer\.resblocks\.(\d+)\.ln_1\.weight"),
        intermediate_size=shapes[f"{p}transformer.resblocks.0.mlp.c_fc.weight"][0],
        projection_dim=shapes[f"{p}text_projection"][1],
    )
    return config


# --- building components -----------------------------------------------------------------------


def build_empty(component: str, config: dict[str, Any]) -> Any:
    """The component's module with parameters on the ``meta`` device (no memory, no init)."""
    import torch

    with torch.device("meta"):
        return construct(component, config)


def construct(component: str, config: dict[str, Any]) -> Any:
    if component == "unet":
        from diffusers import UNet2DConditionModel

        return UNet2DConditionModel.from_config(config)
    if component == "vae":
        from diffusers import AutoencoderKL

        return AutoencoderKL.from_config(config)
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    cls = CLIPTextModel if component == "text_encoder" else CLIPTextModelWithProjection
    fields = {k: v for k, v in config.items() if k != "architectures"}
    return cls(CLIPTextConfig(**fields))


def source_of(component: str, config: dict[str, Any]) -> Callable[[str], keys.Source]:
    """Where each parameter of ``component`` comes from in the original file."""
    if component == "unet":
        return lambda key: keys.unet_source(key, config)
    if component == "vae":
        return lambda key: keys.vae_source(key, config)
    return keys.clip_l_source if component == "text_encoder" else keys.clip_g_source


class TensorReader:
    """Reads original tensors by canonical name, applying a ``Source``'s transform."""

    def __init__(self, handle: Any) -> None:
        self._f = handle
        self._names = {keys.canonical_name(n): n for n in handle.keys()}

    def read(self, source: keys.Source) -> torch.Tensor:
        name = self._names[source.key]
        if source.op == "chunk":
            part = self._f.get_slice(name)
            rows = part.get_shape()[0] // 3
            return part[source.part * rows : (source.part + 1) * rows]
        tensor = self._f.get_tensor(name)
        if source.op == "conv1x1":
            return tensor.flatten(1)
        if source.op == "transpose":
            return tensor.t().contiguous()
        return tensor


def _materialize_buffers(module: Any) -> None:
    """Non-persistent buffers are not in any file: give the ones built on ``meta`` real values."""
    import torch

    for name, buffer in list(module.named_buffers()):
        if not buffer.is_meta:
            continue
        owner_name, _, leaf = name.rpartition(".")
        if leaf != "position_ids":
            raise RuntimeError(f"buffer {name} has no value after loading")
        owner = module.get_submodule(owner_name)
        value = torch.arange(buffer.shape[-1]).expand(tuple(buffer.shape))
        owner.register_buffer(leaf, value, persistent=False)


def load_component(
    reader: TensorReader,
    component: str,
    config: dict[str, Any],
    dtype: torch.dtype,
    device: str,
    source: Callable[[str], keys.Source] | None = None,
) -> Any:
    """``component`` built from ``config`` with each parameter read where ``source`` (default: the
    checkpoint layout) says."""
    module = build_empty(component, config)
    source = source or source_of(component, config)
    state = {key: reader.read(source(key)).to(dtype) for key in module.state_dict()}
    module.load_state_dict(state, strict=True, assign=True)
    _materialize_buffers(module)
    return module.to(device).eval().requires_grad_(False)


def vae_dtype_for(dtype: torch.dtype, device: str) -> torch.dtype:
    """SDXL's VAE overflows in float16: decode in bfloat16 where the GPU has it, else float32."""
    import torch

    if dtype != torch.float16:
        return dtype
    if device.startswith("cuda") and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def _check_layout(path: Path, shapes: Shapes) -> None:
    prefixes = (keys.UNET_PREFIX, keys.VAE_PREFIX, keys.CLIP_L_PREFIX, keys.CLIP_G_PREFIX)
    absent = [p for p in prefixes if not any(name.startswith(p) for name in shapes)]
    if absent:
        raise InvalidInput(
            f"{path.name} is not an SDXL checkpoint in the original single-file layout: "
            f"no tensors under {', '.join(absent)}"
        )


def loaded_size(shapes: Shapes, dtype: torch.dtype, vae_dtype: torch.dtype) -> int:
    """Bytes the loaded components take (what a model cache should count)."""
    total = 0
    for name, shape in shapes.items():
        itemsize = (vae_dtype if name.startswith(keys.VAE_PREFIX) else dtype).itemsize
        total += math.prod(shape) * itemsize
    return total


def load_checkpoint(
    path: Path, device: str, dtype: torch.dtype, on_component: Callable[[int, int], None] | None = None
) -> SdxlComponents:
    """Load all four networks of the SDXL checkpoint at ``path`` onto ``device``.

    ``on_component(done, total)`` is called before each component (a progress and cancel point).
    """
    from safetensors import safe_open

    shapes = read_shapes(path)
    _check_layout(path, shapes)
    try:
        configs = infer_configs(shapes)
    except (KeyError, StopIteration, ValueError) as exc:
        raise InvalidInput(f"{path.name}: not a complete SDXL checkpoint ({exc!r})") from exc
    vae_dtype = vae_dtype_for(dtype, device)
    modules: dict[str, Any] = {}
    with safe_open(str(path), framework="pt") as handle:
        reader = TensorReader(handle)
        for done, component in enumerate(COMPONENTS):
            if on_component:
                on_component(done, len(COMPONENTS))
            wanted = vae_dtype if component == "vae" else dtype
            try:
                modules[component] = load_component(reader, component, configs[component], wanted, device)
            except KeyError as exc:
                raise InvalidInput(f"{path.name}: tensor {exc} is missing for the {component}") from exc
        sampling, latent_format = detect_sampling(handle)
    return SdxlComponents(
        **modules,
        sampling=sampling,
        latent_format=latent_format,
        device=device,
        dtype=dtype,
        vae_dtype=vae_dtype,
    )


# --- how the checkpoint samples ------------------------------------------------------------------

PLAYGROUND_MARKERS = ("edm_mean", "edm_std")


def detect_sampling(handle: Any) -> tuple[ModelSampling, LatentFormat]:
    """The model sampling and latent format a checkpoint declares, by ComfyUI's marker tensors.

    ``edm_mean``/``edm_std``: Playground v2.5 (EDM, sigma_data 0.5, sigmas 0.002..80, its own
    latent format); ``edm_vpred.sigma_max``: v-prediction on EDM sigmas; ``v_pred`` (with
    ``ztsnr`` for zero terminal SNR): discrete v-prediction; otherwise SDXL's discrete eps.
    """
    from visionatrix.engine.sampling import latent_formats, model_sampling

    names = set(handle.keys())
    scheduler = builtin_config("scheduler")
    if all(m in names for m in PLAYGROUND_MARKERS):
        return model_sampling.continuous_edm(0.002, 80.0, "edm", 0.5), latent_formats.PLAYGROUND_2_5
    if "edm_vpred.sigma_max" in names:
        low = (
            float(handle.get_tensor("edm_vpred.sigma_min").item())
            if "edm_vpred.sigma_min" in names
            else 0.002
        )
        high = float(handle.get_tensor("edm_vpred.sigma_max").item())
        return model_sampling.continuous_edm(low, high, "v_prediction", 1.0), latent_formats.SDXL
    schedule = model_sampling.DiscreteSchedule(
        scheduler["beta_start"],
        scheduler["beta_end"],
        scheduler["num_train_timesteps"],
        zsnr="ztsnr" in names,
    )
    prediction = "v_prediction" if "v_pred" in names else "eps"
    return model_sampling.ModelSampling(schedule, prediction), latent_formats.SDXL
