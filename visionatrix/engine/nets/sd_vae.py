"""A standalone SD/SDXL VAE file (4 latent channels) → a diffusers ``AutoencoderKL``.

Two layouts are read, as ComfyUI's ``VAELoader`` reads them:

- the original (Stability) one, which ``stabilityai/sdxl-vae``'s ``sdxl_vae.safetensors`` and most
  community VAEs use: ``encoder.down.0.block.0.conv1.weight``, ``decoder.up.3…`` numbered from the
  output side, attention as 1×1 convolutions — the checkpoint's ``first_stage_model.`` tensors
  without that prefix, mapped by ``sdxl_keys.vae_source``;
- diffusers' own (``diffusion_pytorch_model.safetensors``): ``encoder.down_blocks.0.resnets.0…``,
  loaded by name.

The structure (levels, widths, resnets per level) is read from the shapes, so a tiny test file
with the published names loads through the same code.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from visionatrix.engine.nets import sdxl_keys as keys
from visionatrix.engine.nets import sdxl_loader
from visionatrix.errors import InvalidInput

if TYPE_CHECKING:
    import torch

DIFFUSERS_MARKER = "decoder.up_blocks.0.resnets.0.norm1.weight"


def is_diffusers_layout(shapes: sdxl_loader.Shapes) -> bool:
    return DIFFUSERS_MARKER in shapes


def vae_config(shapes: sdxl_loader.Shapes) -> dict[str, Any]:
    """The AutoencoderKL config of a standalone VAE file with these tensor shapes."""
    if not is_diffusers_layout(shapes):
        return sdxl_loader.vae_config(shapes, "")
    levels = len({m[1] for n in shapes if (m := re.match(r"encoder\.down_blocks\.(\d+)\.resnets\.0\.", n))})
    resnets = {m[1] for n in shapes if (m := re.match(r"encoder\.down_blocks\.0\.resnets\.(\d+)\.", n))}
    channels = [shapes[f"encoder.down_blocks.{i}.resnets.0.conv1.weight"][0] for i in range(levels)]
    config = sdxl_loader.builtin_config("vae")
    config.update(
        block_out_channels=channels,
        down_block_types=["DownEncoderBlock2D"] * levels,
        up_block_types=["UpDecoderBlock2D"] * levels,
        layers_per_block=len(resnets),
        latent_channels=shapes["post_quant_conv.weight"][0],
        in_channels=shapes["encoder.conv_in.weight"][1],
        out_channels=shapes["decoder.conv_out.weight"][0],
        norm_num_groups=sdxl_loader.group_count(channels),
    )
    return config


def load_vae(path: Path, device: str, dtype: torch.dtype) -> Any:
    """The VAE in the file at ``path`` on ``device`` in ``dtype``, ready for inference."""
    from safetensors import safe_open

    shapes = sdxl_loader.read_shapes(path)
    try:
        config = vae_config(shapes)
    except (KeyError, ValueError) as exc:
        raise InvalidInput(f"{path.name}: not a complete SD/SDXL VAE ({exc!r})") from exc
    if is_diffusers_layout(shapes):
        source = keys.Source
    else:
        source = lambda key: keys.vae_source(key, config, prefix="")  # noqa: E731
    with safe_open(str(path), framework="pt") as handle:
        reader = sdxl_loader.TensorReader(handle)
        try:
            return sdxl_loader.load_component(reader, "vae", config, dtype, device, source)
        except KeyError as exc:
            raise InvalidInput(f"{path.name}: tensor {exc} is missing for the VAE") from exc


def loaded_size(path: Path, dtype: torch.dtype) -> int:
    """Bytes the loaded VAE takes."""
    import math

    return sum(math.prod(shape) for shape in sdxl_loader.read_shapes(path).values()) * dtype.itemsize
