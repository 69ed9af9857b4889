"""Flux's autoencoder (``ae.safetensors``: BFL's layout, 16 latent channels) -> diffusers ``AutoencoderKL``.

The file uses the original latent-diffusion names (``encoder.down.0.block.0.conv1.weight``,
``decoder.mid.attn_1.q.weight``...) without the quant convolutions, so the SDXL key table
(``sdxl_keys.vae_source``) serves it once its ``first_stage_model.`` prefix is swapped for the
file's own ("" or ``vae.`` inside an all-in-one checkpoint). Widths come from the header.

Decoding and encoding run whole, as ComfyUI does; a GPU that runs out of memory retries the same
call in tiles (``TilingVae``) instead of failing the task.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from visionatrix.engine.nets import sdxl_keys, weights
from visionatrix.errors import InvalidInput

if TYPE_CHECKING:
    import torch

SCALE, SHIFT = 0.3611, 0.1159  # BFL's autoencoder params; the latent format applies them, not the VAE
CHECKPOINT_PREFIX = "vae."


def file_prefix(path: Path) -> str:
    names = weights.header_shapes(path)
    return CHECKPOINT_PREFIX if f"{CHECKPOINT_PREFIX}decoder.conv_in.weight" in names else ""


def vae_config(shapes: dict[str, tuple[int, ...]], prefix: str = "") -> dict[str, Any]:
    p = prefix
    levels = len(
        {m[1] for n in shapes if (m := re.match(re.escape(p) + r"encoder\.down\.(\d+)\.block\.0\.", n))}
    )
    channels = [shapes[f"{p}encoder.down.{i}.block.0.conv1.weight"][0] for i in range(levels)]
    blocks = len(
        {m[1] for n in shapes if (m := re.match(re.escape(p) + r"encoder\.down\.0\.block\.(\d+)\.", n))}
    )
    groups = math.gcd(32, *channels)  # 32 for the published VAE; tiny test models need fewer
    return {
        "in_channels": shapes[f"{p}encoder.conv_in.weight"][1],
        "out_channels": shapes[f"{p}decoder.conv_out.weight"][0],
        "down_block_types": ["DownEncoderBlock2D"] * levels,
        "up_block_types": ["UpDecoderBlock2D"] * levels,
        "block_out_channels": channels,
        "layers_per_block": blocks,
        "latent_channels": shapes[f"{p}decoder.conv_in.weight"][1],
        "norm_num_groups": groups,
        "sample_size": 1024,
        "scaling_factor": SCALE,
        "shift_factor": SHIFT,
        "use_quant_conv": False,
        "use_post_quant_conv": False,
    }


def load_vae(path: Path, device: str, dtype: torch.dtype, prefix: str | None = None) -> tuple[Any, int]:
    """The autoencoder of ``path`` on ``device`` (wrapped in ``TilingVae``) and the bytes it takes."""
    import torch
    from diffusers import AutoencoderKL

    prefix = file_prefix(path) if prefix is None else prefix
    shapes = weights.header_shapes(path)
    try:
        config = vae_config(shapes, prefix)
    except KeyError as exc:
        raise InvalidInput(f"{path.name} is not a Flux autoencoder (no {exc})") from exc
    with torch.device("meta"):
        vae = AutoencoderKL(**config)
    original = len(sdxl_keys.VAE_PREFIX)
    sources = {}
    for name, _ in vae.named_parameters():
        source = sdxl_keys.vae_source(name, config)
        sources[name] = weights.Read(prefix + source.key[original:], source.op)
    weights.check_shapes(vae, path, sources, "VAE")
    missing = weights.load_into(vae, path, sources, lambda n: dtype, device)
    if missing:
        raise InvalidInput(f"{path.name}: VAE tensors missing for {', '.join(missing[:5])}")
    size = sum(p.numel() * p.element_size() for p in vae.parameters())
    return TilingVae(vae.eval().requires_grad_(False)), size


class TilingVae:
    """A diffusers autoencoder whose ``decode``/``encode`` retry in tiles when a GPU runs out of memory."""

    def __init__(self, vae: Any) -> None:
        self.vae = vae

    def __getattr__(self, name: str) -> Any:
        return getattr(self.vae, name)

    def decode(self, z: torch.Tensor) -> Any:
        return self._whole_or_tiled(self.vae.decode, z)

    def encode(self, x: torch.Tensor) -> Any:
        return self._whole_or_tiled(self.vae.encode, x)

    def _whole_or_tiled(self, call: Any, tensor: torch.Tensor) -> Any:
        import torch

        try:
            return call(tensor)
        except torch.OutOfMemoryError:
            torch.cuda.empty_cache()
            self.vae.enable_tiling()
            try:
                return call(tensor)
            finally:
                self.vae.disable_tiling()
