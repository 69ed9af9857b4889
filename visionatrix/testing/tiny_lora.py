"""A tiny random SDXL LoRA in kohya sd-scripts' format, the format of most SDXL LoRAs published.

kohya names each layer by its original Stability name with ``_`` for ``.`` under ``lora_unet_``
(``lora_unet_input_blocks_7_1_transformer_blocks_0_attn1_to_q``) and the text encoders' layers
under ``lora_te1_`` (CLIP ViT-L) and ``lora_te2_`` (OpenCLIP bigG); each layer has
``.lora_down.weight`` (rank × in), ``.lora_up.weight`` (out × rank) and a scalar ``.alpha``, all
float16. Its default network targets every linear layer of the UNet's transformers (``proj_in``,
``proj_out``, both attentions' ``to_q/k/v/out_0``, ``ff_net_0_proj``, ``ff_net_2``) and of the text
encoders' attention and MLP. This file does the same for the tiny ``lean`` SDXL checkpoint
(``tiny_sdxl``), with random (non-zero) updates so applying it changes the image.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

RANK = 4
ALPHA = 2.0
_UNET_LAYERS = ("proj_in", "proj_out", "to_q", "to_k", "to_v", "to_out.0", "ff.net.0.proj", "ff.net.2")
_CLIP_LAYERS = ("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2")


def _targets() -> dict[str, tuple[int, int]]:
    """kohya layer name -> (out, in) of every layer the LoRA changes."""
    import torch

    from visionatrix.engine.nets import lora_keys
    from visionatrix.engine.nets.sdxl_loader import construct
    from visionatrix.testing.tiny_sdxl import tiny_configs

    configs = tiny_configs("lean")
    found: dict[str, tuple[int, int]] = {}
    with torch.device("meta"):
        modules = {
            name: construct(name, configs[name]) for name in ("unet", "text_encoder", "text_encoder_2")
        }
    shapes = {name: {k: tuple(p.shape) for k, p in m.named_parameters()} for name, m in modules.items()}
    unet = lora_keys.unet_key_map(shapes["unet"], configs["unet"])
    for name, target in unet.items():
        if name.startswith("lora_unet_input_blocks") or name.startswith(
            ("lora_unet_middle", "lora_unet_output")
        ):
            if "attentions" in target.key and target.key.removesuffix(".weight").endswith(_UNET_LAYERS):
                found[name] = shapes["unet"][target.key][:2]
    for component, prefix in (("text_encoder", "lora_te1_"), ("text_encoder_2", "lora_te2_")):
        for name, target in lora_keys.clip_key_map(component, shapes[component]).items():
            layer = target.key.removesuffix(".weight").rsplit(".", 1)[-1]
            if name.startswith(prefix + "text_model") and layer in _CLIP_LAYERS:
                found[name] = shapes[component][target.key][:2]
    return found


def tiny_sdxl_lora_tensors(seed: int = 0) -> dict[str, torch.Tensor]:
    """The tiny LoRA's tensors by name (what ``write_tiny_sdxl_lora`` writes)."""
    import torch

    tensors: dict[str, Any] = {}
    generator = torch.Generator().manual_seed(seed)
    for name, (out, inp) in sorted(_targets().items()):
        tensors[f"{name}.lora_down.weight"] = torch.randn(RANK, inp, generator=generator) * 0.2
        tensors[f"{name}.lora_up.weight"] = torch.randn(out, RANK, generator=generator) * 0.2
        tensors[f"{name}.alpha"] = torch.tensor(ALPHA)
    return {k: v.to(torch.float16).contiguous() for k, v in tensors.items()}


def write_tiny_sdxl_lora(path: Path, seed: int = 0) -> Path:
    """Write the tiny LoRA to ``path``; the same ``seed`` gives the same file."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {
        "ss_network_module": "networks.lora",
        "ss_network_dim": str(RANK),
        "ss_network_alpha": str(ALPHA),
    }
    save_file(tiny_sdxl_lora_tensors(seed), str(path), metadata=metadata)
    return path
