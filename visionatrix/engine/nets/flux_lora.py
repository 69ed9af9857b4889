"""Flux LoRAs merged into copies of the transformer and of CLIP-L, as ComfyUI merges them.

A Flux LoRA names its layers in BFL's layout (fused q/k/v, a single block's q/k/v/MLP input in
one tensor) or diffusers' (``flux_lora_keys``), and CLIP-L's as for SDXL (``lora_te1_…``). Each
layer's update ``strength · (alpha / rank) · up @ down`` (``nets/lora``) is computed for the tensor
the LoRA names, then split over (or swapped into) the diffusers parameters that tensor became;
``W' = W + update`` in float32, rounded to the weight's dtype. 8-bit weights are rounded to
nearest (ComfyUI rounds them stochastically, seeded per weight name), so an 8-bit model with a LoRA
differs from ComfyUI's by that last bit.

The loaded model is never touched: the copy shares every weight the LoRA leaves alone.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from visionatrix.engine.nets import flux_keys, flux_lora_keys, lora, lora_keys
from visionatrix.engine.nets.lora_keys import Target

if TYPE_CHECKING:
    import torch

TRANSFORMER, CLIP_L = "transformer", "text_encoder"


def _shape_of(transformer: Any) -> flux_keys.FluxShape:
    config = transformer.config
    return flux_keys.FluxShape(
        hidden=config.num_attention_heads * config.attention_head_dim,
        double_blocks=config.num_layers,
        single_blocks=config.num_single_layers,
        guidance=bool(config.guidance_embeds),
    )


def read_updates(
    path: Path, transformer: Any | None, clip_l: Any | None
) -> dict[str, dict[str, torch.Tensor]]:
    """The float32 change (at strength 1) of every weight the LoRA file at ``path`` touches, by
    component (``transformer``, ``text_encoder``) and parameter name."""
    import torch

    pieces: dict[str, list[flux_lora_keys.Piece]] = {}
    key_map: dict[str, Target] = {}
    if transformer is not None:
        pieces = flux_lora_keys.transformer_key_map(_shape_of(transformer))
        key_map.update({name: Target(TRANSFORMER, name) for name in pieces})
    if clip_l is not None:
        key_map.update(lora_keys.clip_key_map(CLIP_L, [n for n, _ in clip_l.named_parameters()]))
    found = lora.match(lora.read_lora(path), key_map)
    params = {TRANSFORMER: dict(transformer.named_parameters()) if transformer is not None else {},
              CLIP_L: dict(clip_l.named_parameters()) if clip_l is not None else {}}  # fmt: skip
    deltas: dict[str, dict[str, torch.Tensor]] = defaultdict(dict)
    for target, update in found.items():
        if target.component == CLIP_L:
            deltas[CLIP_L][target.key] = update.delta(tuple(params[CLIP_L][target.key].shape))
            continue
        layer = pieces[target.key]
        first = params[TRANSFORMER][layer[0].param]
        rows = max(p.stop for p in layer) if layer[0].op == "rows" else first.shape[0]
        delta = update.delta((rows, *first.shape[1:]))
        for piece in layer:
            part = delta[piece.start : piece.stop] if piece.op == "rows" else delta
            if piece.op == "swap":
                shift, scale = part.chunk(2, dim=0)
                part = torch.cat([scale, shift], dim=0)
            deltas[TRANSFORMER][piece.param] = part
    return dict(deltas)


def patched_copy(module: Any, deltas: Mapping[str, torch.Tensor], strength: float) -> Any:
    """A copy of ``module`` whose parameters in ``deltas`` carry ``strength`` times them; all else shared."""
    import torch

    memo: dict[int, Any] = {id(b): b for b in module.buffers()}
    for name, param in module.named_parameters():
        delta = deltas.get(name)
        if delta is None:
            memo[id(param)] = param
        else:
            value = (param.detach().float() + strength * delta.to(param.device)).to(param.dtype)
            memo[id(param)] = torch.nn.Parameter(value, requires_grad=False)
    return copy.deepcopy(module, memo)


def added_bytes(module: Any, deltas: Mapping[str, torch.Tensor]) -> int:
    params = dict(module.named_parameters())
    return sum(params[k].numel() * params[k].element_size() for k in deltas if k in params)
