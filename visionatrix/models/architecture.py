"""Which architecture a weight file holds, read from its safetensors header: no torch, no weights read.

A ``.safetensors`` file starts with an 8-byte little-endian header length and a JSON header
mapping each tensor name to its dtype, shape and offsets. The tensor *names* identify the model
family the way ComfyUI's model detection does (``comfy/model_detection.py``): an original-layout
SDXL checkpoint has a UNet with ``label_emb`` and two text encoders (CLIP-L under
``conditioner.embedders.0.transformer``, OpenCLIP-bigG under ``conditioner.embedders.1.model``);
Playground v2.5 is the same layout plus the ``edm_mean``/``edm_std`` tensors of its EDM latent
format; Flux has ``double_blocks``; and so on. Names, not widths, decide, so a tiny test file
with the published names is recognised like the published file.

An architecture ("kind") is a short string; ``KINDS`` names each for people.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Callable, Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

from visionatrix.errors import InvalidInput

# Headers of real checkpoints are under 1 MB; ComfyUI's safetensors reader refuses above 100 MB.
MAX_HEADER_BYTES = 100 * 1024 * 1024

KINDS: dict[str, str] = {
    "sd1": "Stable Diffusion 1.x",
    "sd2": "Stable Diffusion 2.x",
    "sdxl": "SDXL",
    "sdxl-refiner": "SDXL refiner",
    "sdxl-vpred": "SDXL with v-prediction",
    "playground-v2.5": "Playground v2.5 (SDXL with the EDM latent format)",
    "sd3": "Stable Diffusion 3.x",
    "flux": "Flux.1",
    "auraflow": "AuraFlow",
    "hunyuan-dit": "Hunyuan-DiT",
    "hunyuan-video": "HunyuanVideo",
    "hunyuan3d": "Hunyuan3D",
    "pixart-sigma": "PixArt-Σ",
    "ltxv": "LTX-Video",
    "stable-cascade": "Stable Cascade",
    "stable-audio": "Stable Audio",
    "ace-step": "ACE-Step",
    "cosmos": "Cosmos Predict2",
    "supir": "SUPIR",
    "sd-vae": "SD/SDXL VAE (4 latent channels)",
    "flux-vae": "Flux/SD3 VAE (16 latent channels)",
    "wan-vae": "Wan 2.1 VAE",
    "hunyuan-video-vae": "HunyuanVideo VAE",
    "t5-v1.1": "T5 v1.1 text encoder (T5-XXL)",
    "t5": "T5 text encoder (v1.0)",
    "clip-l": "CLIP ViT-L text encoder",
    "clip-g": "OpenCLIP ViT-bigG text encoder",
    "sd1-lora": "SD 1.x LoRA",
    "sdxl-lora": "SDXL LoRA",
    "flux-lora": "Flux.1 LoRA",
    "lora": "LoRA of an unrecognised base model",
    "birefnet": "BiRefNet",
    "rmbg-2.0": "BRIA RMBG-2.0 (BiRefNet-shaped)",
    "u2net": "U²-Net (ONNX)",
}


def describe_kind(kind: str | None) -> str:
    if kind is None:
        return "an unrecognised architecture"
    return KINDS.get(kind, kind)


def read_header(path: Path) -> dict[str, Any]:
    """The JSON header of a ``.safetensors`` file; ``InvalidInput`` if the file is not one."""
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) != 8:
            raise InvalidInput(f"{path}: too short to be a safetensors file")
        (length,) = struct.unpack("<Q", raw)
        if not 2 <= length <= MAX_HEADER_BYTES:
            raise InvalidInput(f"{path}: not a safetensors file (header length {length})")
        text = f.read(length)
    try:
        header = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"{path}: the safetensors header is not JSON: {exc}") from exc
    if not isinstance(header, dict):
        raise InvalidInput(f"{path}: the safetensors header is not a JSON object")
    return header


def tensor_names(header: dict[str, Any]) -> frozenset[str]:
    return frozenset(k for k in header if k != "__metadata__")


def detect_kind(names: Iterable[str]) -> str | None:
    """The architecture of a state dict with these tensor names, or ``None`` when none matches."""
    keys = frozenset(names)
    for rule in _RULES:
        kind = rule(keys)
        if kind is not None:
            return kind
    return None


def file_kind(path: Path) -> str | None:
    """The architecture of the weight file at ``path`` (safetensors only), cached by size and mtime."""
    stat = path.stat()
    return _file_kind(str(path), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=512)
def _file_kind(path: str, size: int, mtime_ns: int) -> str | None:
    return detect_kind(tensor_names(read_header(Path(path))))


# --- the rules, most specific first --------------------------------------------------------------

_UNET = "model.diffusion_model."


def _has(keys: frozenset[str], *names: str) -> bool:
    return all(n in keys for n in names)


def _any_prefix(keys: frozenset[str], prefix: str) -> bool:
    return any(k.startswith(prefix) for k in keys)


def _any_part(keys: frozenset[str], part: str) -> bool:
    return any(part in k for k in keys)


def _sd_unet(keys: frozenset[str]) -> str | None:
    if f"{_UNET}input_blocks.0.0.weight" not in keys:
        return None
    if f"{_UNET}label_emb.0.0.weight" in keys:
        if _any_prefix(keys, "conditioner.embedders.1.model.") and _any_prefix(
            keys, "conditioner.embedders.0.transformer."
        ):
            if _has(keys, "edm_mean", "edm_std"):
                return "playground-v2.5"
            if "v_pred" in keys or _any_prefix(keys, "edm_vpred."):
                return "sdxl-vpred"
            return "sdxl"
        if _any_prefix(keys, "conditioner.embedders.0.model."):
            return "sdxl-refiner"
        return None
    if _any_prefix(keys, "cond_stage_model.transformer."):
        return "sd1"
    if _any_prefix(keys, "cond_stage_model.model."):
        return "sd2"
    return None


# A diffusion transformer's telltale tensor (ComfyUI's model detection keys) -> its kind.
_TRANSFORMER_KEYS = (
    ("joint_blocks.0.context_block.attn.qkv.weight", "sd3"),
    ("txt_in.individual_token_refiner.blocks.0.norm1.weight", "hunyuan-video"),
    ("double_blocks.0.img_attn.qkv.weight", "flux"),
    ("cond_seq_linear.weight", "auraflow"),
    ("mlp_t5.0.weight", "hunyuan-dit"),
    ("adaln_single.emb.timestep_embedder.linear_1.bias", "ltxv"),
    ("t_block.1.weight", "pixart-sigma"),
)


def _transformers(keys: frozenset[str]) -> str | None:
    """Diffusion transformers, with the single-file ``model.diffusion_model.`` prefix or without."""
    for prefix in (_UNET, ""):
        for key, kind in _TRANSFORMER_KEYS:
            if prefix + key in keys:
                return kind
    return None


def _vae(keys: frozenset[str]) -> str | None:
    if not _has(keys, "encoder.conv_in.weight", "decoder.conv_in.weight"):
        return None
    return "sd-vae" if "quant_conv.weight" in keys else "flux-vae"


# attention at UNet places SD 1.x has and SDXL has not (its first level and fourth up level)
_SD1_ONLY_ATTENTION = re.compile(
    r"input_blocks[._][12][._]1[._]|output_blocks[._](?:9|10|11)[._]1[._]"
    r"|down_blocks[._]0[._]attentions|up_blocks[._]3[._]attentions"
)


def _sdxl_unet_attention(keys: frozenset[str]) -> bool:
    """LoRA keys on UNet transformer layers, none of them where only SD 1.x has attention."""
    attention = [
        k for k in keys if "transformer_blocks" in k and not k.startswith(("lora_te", "text_encoder"))
    ]
    return bool(attention) and not any(_SD1_ONLY_ATTENTION.search(k) for k in attention)


def _lora(keys: frozenset[str]) -> str | None:
    if not any(part in k for k in keys for part in ("lora_up", "lora_down", "lora_A", "lora_B")):
        return None
    if _any_part(keys, "double_blocks") or _any_part(keys, "single_transformer_blocks"):
        return "flux-lora"
    if (
        _any_part(keys, "lora_te2_")
        or _any_part(keys, "text_encoder_2")
        or _any_part(keys, "lora_unet_input_blocks")
        or _any_part(keys, "lora_unet_output_blocks")
        or _any_part(keys, "transformer_blocks.9.")  # SDXL's deepest level has 10 blocks; SD1 has 1
        or _any_part(keys, "transformer_blocks_9_")
        or _sdxl_unet_attention(keys)
    ):
        return "sdxl-lora"
    if _any_part(keys, "lora_unet_down_blocks") or _any_part(keys, "lora_te_"):
        return "sd1-lora"
    return "lora"


def _birefnet(keys: frozenset[str]) -> str | None:
    if (
        "bb.patch_embed.proj.weight" in keys
        and _any_prefix(keys, "decoder.")
        and _any_prefix(keys, "squeeze_module.")
    ):
        return "birefnet"
    return None


def _text_encoder(keys: frozenset[str]) -> str | None:
    """Standalone text encoders in transformers' names (ComfyUI's ``clip``/``text_encoders`` files)."""
    if "encoder.block.0.layer.0.SelfAttention.q.weight" in keys:
        return "t5-v1.1" if "encoder.block.0.layer.1.DenseReluDense.wi_0.weight" in keys else "t5"
    if "text_model.encoder.layers.0.mlp.fc1.weight" in keys:
        # ViT-L has 12 layers, bigG 32: names alone tell them apart (ComfyUI looks at layer 30)
        return "clip-g" if "text_model.encoder.layers.30.mlp.fc1.weight" in keys else "clip-l"
    return None


_RULES: tuple[Callable[[frozenset[str]], str | None], ...] = (
    _sd_unet,
    _transformers,
    _birefnet,
    _lora,
    _vae,
    _text_encoder,
)
