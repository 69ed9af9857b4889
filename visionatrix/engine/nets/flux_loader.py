"""A Flux.1 transformer single file (BFL / ComfyUI layout) -> diffusers ``FluxTransformer2DModel``.

The published files (``flux1-dev.sft``, ``flux1-schnell.safetensors``, ``flux1-kontext-dev``,
``flux1-fill-dev``, Kijai's ``*-fp8-e4m3fn`` files, the transformer of Comfy-Org's all-in-one
checkpoints under ``model.diffusion_model.``) differ only in widths and dtypes, which are read from
the header: width from ``img_in``, depths by counting blocks, head width from the q/k norm scale,
a guidance embedder or none (schnell), 64 or 384 input features (Fill adds 80 channels of masked
image and mask). The model is built on the ``meta`` device and filled tensor by tensor
(``nets/weights``) in the dtype each weight is kept in:

- ``weight_dtype`` (UNETLoader's input, ComfyUI's names): ``fp8_e4m3fn`` / ``fp8_e4m3fn_fast`` /
  ``fp8_e5m2`` keep every linear layer's weights in that 8-bit format (12 GB instead of 24 GB), and
  each layer is cast up to the compute dtype just for its own forward (``nets/cast_linear``);
  ``default`` keeps the file's dtype when it is 8-bit, else the compute dtype.
- compute dtype: bfloat16 on GPUs that have it and on CPUs with native bf16, else float16 on
  CUDA and float32 on CPUs; ``VIX_PRECISION`` overrides.

Before anything is read the loader checks the weights plus working memory fit on the device
(``nets/memory``), so a 12 B model that cannot fit is refused with the numbers, not killed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from visionatrix.engine.nets import flux_keys, weights
from visionatrix.errors import InvalidInput

if TYPE_CHECKING:
    import torch

WEIGHT_DTYPES = ("default", "fp8_e4m3fn", "fp8_e4m3fn_fast", "fp8_e5m2")
_FP8_NAMES = {"fp8_e4m3fn": "float8_e4m3fn", "fp8_e4m3fn_fast": "float8_e4m3fn", "fp8_e5m2": "float8_e5m2"}
_FILE_FP8 = {"F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2"}
LATENT_CHANNELS = 16
PATCH = 2
# activations of a 1024² image (4096 image + 512 text tokens), batch 2, with room to spare
WORKING_BYTES = 3 << 30


@dataclass(frozen=True)
class FluxSpec:
    """What a file's header says about the transformer in it."""

    shape: flux_keys.FluxShape
    head_dim: int
    in_channels: int  # latent channels the network reads: 16, or 96 for Fill (16 + 16 + 64)
    out_channels: int
    context_dim: int  # T5 width, 4096
    pooled_dim: int  # CLIP-L pooled width, 768
    prefix: str  # "" or ComfyUI's checkpoint prefix

    @property
    def heads(self) -> int:
        return self.shape.hidden // self.head_dim

    def diffusers_config(self) -> dict[str, Any]:
        return {
            "patch_size": 1,
            "in_channels": self.in_channels * PATCH * PATCH,
            "out_channels": self.out_channels * PATCH * PATCH,
            "num_layers": self.shape.double_blocks,
            "num_single_layers": self.shape.single_blocks,
            "attention_head_dim": self.head_dim,
            "num_attention_heads": self.heads,
            "joint_attention_dim": self.context_dim,
            "pooled_projection_dim": self.pooled_dim,
            "guidance_embeds": self.shape.guidance,
            "axes_dims_rope": rope_axes(self.head_dim),
        }


def rope_axes(head_dim: int) -> tuple[int, int, int]:
    """Rotary widths of the (index, row, column) position axes: (16, 56, 56) for 128-wide heads."""
    if head_dim % 32:
        raise InvalidInput(f"Flux attention heads must be a multiple of 32 wide, got {head_dim}")
    return head_dim // 8, head_dim * 7 // 16, head_dim * 7 // 16


def read_spec(path: Path) -> FluxSpec:
    shapes = weights.header_shapes(path)
    prefix = (
        flux_keys.CHECKPOINT_PREFIX if any(k.startswith(flux_keys.CHECKPOINT_PREFIX) for k in shapes) else ""
    )
    names = {k[len(prefix) :]: v for k, v in shapes.items() if k.startswith(prefix)}
    try:
        hidden, packed_in = names["img_in.weight"]
        head_dim = names["double_blocks.0.img_attn.norm.query_norm.scale"][0]
        shape = flux_keys.FluxShape(
            hidden=hidden,
            double_blocks=_count(names, r"double_blocks\.(\d+)\."),
            single_blocks=_count(names, r"single_blocks\.(\d+)\."),
            guidance="guidance_in.in_layer.weight" in names,
            mlp_ratio=names["double_blocks.0.img_mlp.0.weight"][0] / hidden,
        )
        return FluxSpec(
            shape=shape,
            head_dim=head_dim,
            in_channels=packed_in // (PATCH * PATCH),
            out_channels=names["final_layer.linear.weight"][0] // (PATCH * PATCH),
            context_dim=names["txt_in.weight"][1],
            pooled_dim=names["vector_in.in_layer.weight"][1],
            prefix=prefix,
        )
    except (KeyError, ValueError) as exc:
        raise InvalidInput(f"{path.name} is not a Flux.1 transformer in the BFL layout (no {exc})") from exc


def _count(names: dict[str, Any], pattern: str) -> int:
    regex = re.compile(pattern)
    return len({m[1] for name in names if (m := regex.match(name))})


def compute_dtype(device: str, precision: str) -> torch.dtype:
    """The dtype Flux computes in: bfloat16 where the hardware has it (Flux overflows float16)."""
    import torch

    from visionatrix.models.device import choose_precision

    chosen = choose_precision(device, precision)
    if precision == "auto" and device.startswith("cuda") and torch.cuda.is_bf16_supported():
        chosen = "bfloat16"
    return getattr(torch, chosen)


def storage_dtype(weight_dtype: str, path: Path, compute: torch.dtype) -> torch.dtype:
    """The dtype the linear layers' weights are kept in, for UNETLoader's ``weight_dtype``."""
    import torch

    if weight_dtype not in WEIGHT_DTYPES:
        raise InvalidInput(
            f"UNETLoader: weight_dtype {weight_dtype!r} is not one of {', '.join(WEIGHT_DTYPES)}"
        )
    if weight_dtype != "default":
        return getattr(torch, _FP8_NAMES[weight_dtype])
    dtypes = weights.header_dtypes(path)
    linear = next((d for k, d in dtypes.items() if k.endswith("img_attn.qkv.weight")), "")
    return getattr(torch, _FILE_FP8[linear]) if linear in _FILE_FP8 else compute


def build_meta(spec: FluxSpec) -> Any:
    """The diffusers transformer for ``spec`` with its parameters on ``meta`` (no memory, no init)."""
    import torch
    from diffusers import FluxTransformer2DModel

    with torch.device("meta"):
        return FluxTransformer2DModel(**spec.diffusers_config())


def _linear_params(model: Any) -> set[str]:
    import torch

    return {
        f"{name}.{p}"
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear)
        for p in ("weight", "bias")
    }


def loaded_bytes(model: Any, storage: torch.dtype, compute: torch.dtype) -> int:
    """Bytes ``model``'s weights take once loaded: linear layers at ``storage``, the rest at ``compute``."""
    linear = _linear_params(model)
    return sum(
        p.numel() * (storage if n in linear else compute).itemsize for n, p in model.named_parameters()
    )


def fill(
    model: Any,
    path: Path,
    spec: FluxSpec,
    device: str,
    storage: torch.dtype,
    compute: torch.dtype,
    on_progress: Callable[[int, int], None] | None = None,
) -> Any:
    """``model`` (from ``build_meta``) with the weights of ``path`` on ``device``, ready to run."""
    sources = {
        name: weights.Read(spec.prefix + s.key, s.op, s.start, s.stop)
        for name, s in flux_keys.transformer_sources(spec.shape).items()
    }
    weights.check_shapes(model, path, sources, "Flux transformer")
    linear = _linear_params(model)
    missing = weights.load_into(
        model, path, sources, lambda n: storage if n in linear else compute, device, on_progress
    )
    if missing:
        raise InvalidInput(f"{path.name}: Flux transformer tensors missing for {', '.join(missing[:5])}")
    if storage != compute:
        from visionatrix.engine.nets.cast_linear import cast_linear_layers

        # every linear layer, the modulations included (ComfyUI keeps them 8-bit as well)
        cast_linear_layers(model)
    return model.eval().requires_grad_(False)
