"""LoRA files: read the low-rank updates, merge them into copies of a model's weights.

A LoRA file holds, per layer it changes (named in one of the spellings ``lora_keys`` lists), an
``up`` (out × r) and a ``down`` (r × in, or r × in × kh × kw for a convolution) matrix, an optional
``alpha`` and an optional LoCon ``mid`` (r × r × kh × kw). The tensor suffixes are the ones ComfyUI's
``comfy/lora.py`` reads: ``.lora_up.weight``/``.lora_down.weight`` (kohya, with ``.lora_mid.weight``),
``_lora.up.weight``/``_lora.down.weight`` (diffusers' old processor format), ``.lora_B.weight``/
``.lora_A.weight`` (PEFT), ``.lora.up.weight``/``.lora.down.weight``, ``.lora_B``/``.lora_A``,
``.lora_linear_layer.up.weight``/``.down.weight`` (transformers).

As ComfyUI's ``calculate_weight`` computes it: ``W' = W + strength · (alpha / r) · (up @ down)``
(``alpha / r`` is 1 without ``alpha``), in float32, then rounded to the weight's dtype.

Merging never touches the loaded model: ``patched_copy`` returns a module whose patched weights
are new tensors and whose every other parameter and buffer is the original object, so a cached
checkpoint stays as loaded and a patched copy costs only the layers the LoRA changes.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from visionatrix.engine.nets.lora_keys import Target
from visionatrix.errors import InvalidInput

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

# (up suffix, down suffix, mid suffix or "")
_SUFFIXES = (
    (".lora_up.weight", ".lora_down.weight", ".lora_mid.weight"),
    ("_lora.up.weight", "_lora.down.weight", ""),
    (".lora_B.weight", ".lora_A.weight", ""),
    (".lora.up.weight", ".lora.down.weight", ""),
    (".lora_B", ".lora_A", ""),
    (".lora_linear_layer.up.weight", ".lora_linear_layer.down.weight", ""),
)
# tensors of formats beyond plain LoRA/LoCon: applying the rest of such a file would give another image
_UNSUPPORTED = ("hada_w1_a", "lokr_w1", ".diff", ".a1.weight", ".set_weight", "oft_", ".dora_scale")


@dataclass(frozen=True)
class LowRank:
    """One layer's update: ``scale · up @ (mid ∘ down)``."""

    up: torch.Tensor
    down: torch.Tensor
    alpha: float | None = None
    mid: torch.Tensor | None = None

    def delta(self, shape: tuple[int, ...]) -> torch.Tensor:
        """The float32 change to a weight of ``shape`` at strength 1."""
        import torch

        up, down = self.up.float(), self.down.float()
        scale = 1.0 if self.alpha is None else self.alpha / down.shape[0]
        if self.mid is not None:
            mid = self.mid.float()
            final = [down.shape[1], down.shape[0], mid.shape[2], mid.shape[3]]
            down = (
                torch.mm(down.transpose(0, 1).flatten(start_dim=1), mid.transpose(0, 1).flatten(start_dim=1))
                .reshape(final)
                .transpose(0, 1)
            )
        product = torch.mm(up.flatten(start_dim=1), down.flatten(start_dim=1))
        if product.numel() != _numel(shape):
            raise InvalidInput(
                f"a LoRA update of shape {tuple(product.shape)} does not fit a weight of shape {shape}"
            )
        return scale * product.reshape(shape)


def _numel(shape: tuple[int, ...]) -> int:
    count = 1
    for n in shape:
        count *= n
    return count


def read_lora(path: Path) -> dict[str, torch.Tensor]:
    """Every tensor of the LoRA file at ``path``, on the CPU."""
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise InvalidInput(f"{path.name} is not a readable safetensors LoRA file: {exc}") from exc


def match(tensors: Mapping[str, torch.Tensor], key_map: Mapping[str, Target]) -> dict[Target, LowRank]:
    """The updates in ``tensors`` for the weights ``key_map`` knows; the rest is logged and left out."""
    found: dict[Target, LowRank] = {}
    used: set[str] = set()
    for name, target in key_map.items():
        update = _update(tensors, name, used)
        if update is not None:
            found[target] = update
    left = sorted(k for k in tensors if k not in used)
    other = [k for k in left if any(marker in k for marker in _UNSUPPORTED)]
    if other:
        raise InvalidInput(
            f"LoRA: {other[0]} (and {len(other) - 1} more tensors) belong to a LyCORIS or DoRA format "
            "(LoHa, LoKr, OFT, GLoRA, full diff, DoRA), which this engine does not apply; it applies plain "
            "LoRA and LoCon"
        )
    if left:
        log.warning("LoRA: %d tensors match no layer of this model and are ignored: %s", len(left), left[:8])
    return found


def _update(tensors: Mapping[str, torch.Tensor], name: str, used: set[str]) -> LowRank | None:
    for up_suffix, down_suffix, mid_suffix in _SUFFIXES:
        up = tensors.get(name + up_suffix)
        if up is None:
            continue
        down_name = name + down_suffix
        if down_name not in tensors:
            raise InvalidInput(f"LoRA: {name + up_suffix} has no matching {down_name}")
        alpha = tensors.get(name + ".alpha")
        mid = tensors.get(name + mid_suffix) if mid_suffix else None
        used.update(
            n for n in (name + up_suffix, down_name, name + ".alpha", name + mid_suffix) if n in tensors
        )
        return LowRank(up, tensors[down_name], None if alpha is None else float(alpha.item()), mid)
    return None


def merged(weight: torch.Tensor, update: LowRank, strength: float) -> torch.Tensor:
    """``weight`` with ``update`` added at ``strength``, computed in float32, in ``weight``'s dtype."""
    delta = update.delta(tuple(weight.shape)).to(weight.device)
    return (weight.float() + strength * delta).to(weight.dtype)


def patched_copy(module: Any, updates: Mapping[str, LowRank], strength: float) -> Any:
    """A copy of ``module`` whose weights named in ``updates`` carry them; all else is shared."""
    import torch

    params = dict(module.named_parameters())
    memo: dict[int, Any] = {id(b): b for b in module.buffers()}
    for name, param in params.items():
        update = updates.get(name)
        value = param if update is None else merged(param.detach(), update, strength)
        memo[id(param)] = value if update is None else torch.nn.Parameter(value, requires_grad=False)
    return copy.deepcopy(module, memo)


def split(updates: Mapping[Target, LowRank]) -> dict[str, dict[str, LowRank]]:
    """``updates`` grouped by component: component -> weight key -> update."""
    by_component: dict[str, dict[str, LowRank]] = {}
    for target, update in updates.items():
        by_component.setdefault(target.component, {})[target.key] = update
    return by_component
