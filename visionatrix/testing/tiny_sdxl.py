"""A tiny randomly initialised SDXL checkpoint in the original Stability single-file layout.

Two layouts, both loaded by exactly the code that loads the 6.9 GB files (it reads the structure
from the tensor names and shapes):

- ``full``: every tensor name of the published SDXL files (``fixtures/sdxl``), same depth
  everywhere — three UNet levels with 0/2/10 transformer blocks, a four-level VAE, 12 + 32
  text-encoder layers — but narrow (16–64 channels). What the layout tests use.
- ``lean``: the published names less 69 of the UNet's 70 transformer blocks: it keeps its levels,
  resnets, samplers and the deepest level's first transformer block (``input_blocks.7.1``,
  ``middle_block.1``, ``output_blocks.0-2.1``, ``transformer_blocks.0``), 4–16 channels. With no
  transformer on the second level, that level's upsampler sits where the original layout puts it
  then, ``output_blocks.5.1.conv`` (published: ``output_blocks.5.2.conv``, behind the transformer).
  At SDXL's ~1 MP sizes, attention over 4096 and 1024 positions in those 70 blocks is what a narrow
  UNet step costs (4.4 s CPU per step measured here; lean: 0.2 s), so the catalog flows, whose
  sizes and step counts are SDXL's own, run on this one in CI.

The real vocabulary size stays (49,408) so the real tokenizers drive it. Tensors are float16 like
the published files, plus the bookkeeping tensors those carry.

The networks are built by diffusers / transformers from small configs and written out through
``nets/sdxl_keys`` run backwards, so the writer also checks that mapping.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from visionatrix.engine.nets import sdxl_keys as keys
from visionatrix.engine.nets.sdxl_loader import COMPONENTS, builtin_config, construct, source_of

if TYPE_CHECKING:
    import torch

_TINY = {
    "unet": {
        "block_out_channels": [16, 32, 64],
        "attention_head_dim": [1, 1, 1],
        "norm_num_groups": 16,
        "cross_attention_dim": 64,  # text encoder widths 32 + 32
        "addition_time_embed_dim": 8,
        "projection_class_embeddings_input_dim": 80,  # pooled 32 + 6 × 8
    },
    "vae": {"block_out_channels": [8, 16, 32, 32], "norm_num_groups": 8},
    "text_encoder": {"hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 1},
    "text_encoder_2": {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_attention_heads": 1,
        "projection_dim": 32,
    },
}


_LEAN = {
    "unet": {
        # widths double per level as SDXL's (320, 640, 1280) do, so the same levels have shortcuts
        "block_out_channels": [4, 8, 16],
        "norm_num_groups": 4,
        "transformer_layers_per_block": [1, 1, 1],
        "down_block_types": ["DownBlock2D", "DownBlock2D", "CrossAttnDownBlock2D"],
        "up_block_types": ["CrossAttnUpBlock2D", "UpBlock2D", "UpBlock2D"],
    },
    "vae": {"block_out_channels": [4, 8, 16, 16], "norm_num_groups": 4},
}
LAYOUTS = ("full", "lean")


def tiny_configs(layout: str = "full") -> dict[str, dict[str, Any]]:
    """The component configs of the tiny checkpoint: SDXL-base with narrow widths (``lean``: shallower)."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout {layout!r}: expected one of {', '.join(LAYOUTS)}")
    extra: dict[str, dict[str, Any]] = _LEAN if layout == "lean" else {}
    return {name: {**builtin_config(name), **_TINY[name], **extra.get(name, {})} for name in COMPONENTS}


def original_tensors(module: Any, source: Callable[[str], keys.Source]) -> dict[str, torch.Tensor]:
    """``module``'s parameters under their original names (``Source`` transforms undone)."""
    import torch

    out: dict[str, torch.Tensor] = {}
    fused: dict[str, dict[int, torch.Tensor]] = defaultdict(dict)
    for key, tensor in module.state_dict().items():
        src = source(key)
        if src.op == "chunk":
            fused[src.key][src.part] = tensor
        elif src.op == "conv1x1":
            out[src.key] = tensor[:, :, None, None]
        elif src.op == "transpose":
            out[src.key] = tensor.t()
        else:
            out[src.key] = tensor
    for key, parts in fused.items():
        out[key] = torch.cat([parts[i] for i in sorted(parts)])
    return out


def _bookkeeping(configs: dict[str, dict[str, Any]]) -> dict[str, torch.Tensor]:
    import torch

    positions = configs["text_encoder"]["max_position_embeddings"]
    return {
        keys.file_name(keys.CLIP_L_PREFIX + "embeddings.position_ids"): torch.arange(positions)[None],
        keys.CLIP_G_PREFIX + "logit_scale": torch.tensor(4.6052),
    }


def full_configs() -> dict[str, dict[str, Any]]:
    """The component configs of the published SDXL checkpoints (full size)."""
    return {name: builtin_config(name) for name in COMPONENTS}


def write_tiny_sdxl_checkpoint(
    path: Path, seed: int = 0, *, playground: bool = False, layout: str = "full"
) -> Path:
    """Write the tiny checkpoint (about 20 MB, ``lean`` 7 MB) to ``path``; one ``seed``, one file.

    ``playground``: also write the ``edm_mean`` / ``edm_std`` tensors Playground v2.5 checkpoints
    carry, by which loaders (ComfyUI's and ours) recognise its EDM sampling and latent format.
    """
    return write_sdxl_checkpoint(path, tiny_configs(layout), seed, playground=playground)


def write_sdxl_checkpoint(
    path: Path,
    configs: dict[str, dict[str, Any]],
    seed: int = 0,
    *,
    device: str = "cpu",
    playground: bool = False,
) -> Path:
    """Write a random checkpoint of ``configs`` in the single-file layout, built on ``device``
    (``full_configs()`` on a GPU: the published size, 6.9 GB, in seconds)."""
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    tensors: dict[str, torch.Tensor] = {}
    for component in COMPONENTS:
        with torch.device(device):
            module = construct(component, configs[component])
        source = source_of(component, configs[component])
        for key, tensor in original_tensors(module, source).items():
            tensors[keys.file_name(key)] = tensor.detach().to("cpu", torch.float16).contiguous()
        del module
    tensors.update(_bookkeeping(configs))
    if playground:
        # Playground v2.5's published latent statistics, in the shape its checkpoints store them
        tensors["edm_mean"] = torch.tensor([-1.6574, 1.886, -1.383, 2.5155]).view(1, 4, 1, 1)
        tensors["edm_std"] = torch.tensor([8.4927, 5.9022, 6.8617, 5.245]).view(1, 4, 1, 1)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata={"format": "pt"})
    return path
