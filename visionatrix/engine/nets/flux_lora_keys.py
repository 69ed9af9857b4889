"""Which weights of the diffusers Flux transformer each Flux LoRA layer name updates.

The spellings ComfyUI's ``model_lora_keys_unet`` accepts for Flux:

- BFL names: ``lora_unet_double_blocks_0_img_attn_qkv`` (kohya / ai-toolkit / most CivitAI files),
  ``diffusion_model.double_blocks.0.img_attn.qkv`` (ComfyUI's own files), or the bare name. Such an
  update is for a *fused* BFL tensor (q, k and v in one; a single block's q, k, v and MLP input in
  one): its rows are split over the diffusers parameters that tensor becomes, and the final
  modulation's two halves are swapped, exactly as the weights themselves are (``flux_keys``).
- diffusers names: ``transformer.transformer_blocks.0.attn.to_q`` (diffusers / SimpleTuner),
  ``lora_transformer_…`` (OneTrainer), ``lycoris_…``: one parameter each, as it is.

Pure string work, no torch.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from visionatrix.engine.nets import flux_keys

_WEIGHT = ".weight"


@dataclass(frozen=True)
class Piece:
    """Part of a LoRA layer's update: rows ``start:stop`` ("rows"), both halves swapped ("swap") or all."""

    param: str
    op: str = "copy"
    start: int = 0
    stop: int = 0


def _flat(name: str) -> str:
    return name.replace(".", "_")


def transformer_key_map(shape: flux_keys.FluxShape) -> dict[str, list[Piece]]:
    """LoRA layer name -> the diffusers transformer parameters its update lands in."""
    by_source: dict[str, list[Piece]] = defaultdict(list)
    found: dict[str, list[Piece]] = {}
    for param, source in flux_keys.transformer_sources(shape).items():
        if not (param.endswith(_WEIGHT) and source.key.endswith(_WEIGHT)):
            continue  # biases and the q/k norms' scales: LoRAs train the linear layers' weights
        by_source[source.key[: -len(_WEIGHT)]].append(Piece(param, source.op, source.start, source.stop))
        diffusers = param[: -len(_WEIGHT)]
        for name in (
            f"transformer.{diffusers}",
            f"lora_transformer_{_flat(diffusers)}",
            f"lycoris_{_flat(diffusers)}",
        ):
            found[name] = [Piece(param)]
    for bfl, pieces in by_source.items():
        for name in (f"lora_unet_{_flat(bfl)}", f"diffusion_model.{bfl}", bfl):
            found.setdefault(name, pieces)
    return found
