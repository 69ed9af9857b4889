"""Which weight of an SDXL model each LoRA key names: every spelling the field's trainers write.

A LoRA file names the layer each low-rank update belongs to. For SDXL the spellings in use are
the ones ComfyUI's ``model_lora_keys_unet`` / ``model_lora_keys_clip`` accept:

UNet (``X`` an original Stability name such as ``input_blocks.7.1.transformer_blocks.0.attn1.to_q``,
``D`` the diffusers name of the same layer, ``down_blocks.2.attentions.0.transformer_blocks.0.attn1.to_q``)
  - ``lora_unet_`` + X with ``_`` for ``.``   kohya sd-scripts (most SDXL LoRAs on CivitAI)
  - ``lora_unet_`` + D with ``_`` for ``.``   kohya-style names of diffusers-layout trainers
  - ``diffusion_model.`` + X                  ComfyUI's own LoRA files
  - ``unet.`` + D, or D                       diffusers / PEFT
  - ``unet.`` + D with ``.processor.to_q`` …  diffusers' old attention-processor format
Text encoders (``b`` a layer, ``c`` one of ``self_attn.{q,k,v,out}_proj``, ``mlp.fc1``, ``mlp.fc2``)
  - ``lora_te1_text_model_encoder_layers_{b}_{c with _}`` (CLIP ViT-L), ``lora_te2_…`` (OpenCLIP bigG)
  - ``text_encoder.text_model.encoder.layers.{b}.{c}``, ``text_encoder_2.…`` (diffusers)
  - ``text_encoders.clip_l.transformer.text_model.encoder.layers.{b}.{c}``, ``…clip_g…`` (ComfyUI)
  - bigG's projection: ``lora_te2_text_projection``, ``lora_prior_te_text_projection``,
    ``text_encoders.clip_g.transformer.text_projection``

The map is built from the model's own parameter names (``sdxl_keys`` gives the original name of
each UNet parameter), so it is right for any SDXL-layout model, the tiny test ones included.
Pure string work, no torch.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, NamedTuple

from visionatrix.engine.nets import sdxl_keys


class Target(NamedTuple):
    """A weight to patch: which component (``unet``, ``text_encoder``, ``text_encoder_2``) and its key."""

    component: str
    key: str


_WEIGHT = ".weight"
_CLIP_LAYER = re.compile(
    r"(?:text_model\.)?encoder\.layers\.(\d+)\.(self_attn\.[qkv]_proj|self_attn\.out_proj|mlp\.fc[12])"
)
_CLIP_FILES = {
    "text_encoder": ("lora_te1_", "text_encoder.", "clip_l"),
    "text_encoder_2": ("lora_te2_", "text_encoder_2.", "clip_g"),
}


def _flat(name: str) -> str:
    return name.replace(".", "_")


def unet_key_map(param_names: Iterable[str], config: dict[str, Any]) -> dict[str, Target]:
    """LoRA layer name → UNet weight, for a diffusers UNet with these parameters built from ``config``."""
    found: dict[str, Target] = {}
    for key in param_names:
        if not key.endswith(_WEIGHT):
            continue
        target = Target("unet", key)
        diffusers = key[: -len(_WEIGHT)]
        original = sdxl_keys.unet_source(key, config).key
        original = original[len(sdxl_keys.UNET_PREFIX) : -len(_WEIGHT)]
        processor = diffusers.replace(".to_", ".processor.to_")
        processor = processor.removesuffix(".0") if processor.endswith(".to_out.0") else processor
        for name in (
            f"lora_unet_{_flat(original)}",
            f"lora_unet_{_flat(diffusers)}",
            f"diffusion_model.{original}",
            f"unet.{diffusers}",
            diffusers,
            f"unet.{processor}",
        ):
            found.setdefault(name, target)
    return found


def clip_key_map(component: str, param_names: Iterable[str]) -> dict[str, Target]:
    """LoRA layer name → weight of SDXL text encoder ``component`` (``text_encoder``: ViT-L,
    ``text_encoder_2``: bigG), for a transformers CLIP text model with these parameters."""
    kohya, diffusers, comfy = _CLIP_FILES[component]
    found: dict[str, Target] = {}
    for key in param_names:
        if key == "text_projection.weight" and component == "text_encoder_2":
            target = Target(component, key)
            for name in (
                f"{kohya}text_projection",
                "lora_prior_te_text_projection",
                f"text_encoders.{comfy}.transformer.text_projection",
            ):
                found[name] = target
            continue
        m = _CLIP_LAYER.fullmatch(key.removesuffix(_WEIGHT)) if key.endswith(_WEIGHT) else None
        if m is None:
            continue
        layer, part = m[1], m[2]
        target = Target(component, key)
        found[f"{kohya}text_model_encoder_layers_{layer}_{_flat(part)}"] = target
        found[f"{diffusers}text_model.encoder.layers.{layer}.{part}"] = target
        found[f"text_encoders.{comfy}.transformer.text_model.encoder.layers.{layer}.{part}"] = target
    return found
