"""Tensor names: diffusers/transformers SDXL components ↔ the original Stability single-file layout.

One direction is written down: for each parameter of a diffusers UNet / VAE or a transformers CLIP
text model, *where it comes from* in the original file (``Source``). The loader reads through it; the
tiny-checkpoint writer runs it backwards. Pure string work, no torch.

Original names are used in their canonical form, the one in ``fixtures/sdxl``: the CLIP ViT-L
encoder without the ``text_model.`` level that published files carry
(``conditioner.embedders.0.transformer.text_model.…``); ``canonical_name`` removes it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
CLIP_L_PREFIX = "conditioner.embedders.0.transformer."
CLIP_G_PREFIX = "conditioner.embedders.1.model."
_CLIP_L_FILE_PREFIX = CLIP_L_PREFIX + "text_model."

# Tensors some published files carry that no model parameter comes from.
BOOKKEEPING_SUFFIXES = ("position_ids", "logit_scale")


@dataclass(frozen=True)
class Source:
    """Where one model parameter lives in the original file and how to turn it into the parameter."""

    key: str
    # "copy"; "conv1x1": the original stores a linear layer as a 1×1 convolution;
    # "transpose": a bare projection matrix used as ``x @ W``; "chunk": ``part`` of a fused q/k/v tensor
    op: str = "copy"
    part: int = 0


def canonical_name(name: str) -> str:
    """A file's tensor name in the canonical form that ``Source.key`` uses."""
    if name.startswith(_CLIP_L_FILE_PREFIX):
        return CLIP_L_PREFIX + name[len(_CLIP_L_FILE_PREFIX) :]
    return name


def file_name(key: str) -> str:
    """The name a published file uses for canonical ``key`` (inverse of ``canonical_name``)."""
    if key.startswith(CLIP_L_PREFIX):
        return _CLIP_L_FILE_PREFIX + key[len(CLIP_L_PREFIX) :]
    return key


def is_bookkeeping(name: str) -> bool:
    return name.endswith(BOOKKEEPING_SUFFIXES)


# --- UNet -----------------------------------------------------------------------------------------

_RESNET = {
    "norm1": "in_layers.0",
    "conv1": "in_layers.2",
    "time_emb_proj": "emb_layers.1",
    "norm2": "out_layers.0",
    "conv2": "out_layers.3",
    "conv_shortcut": "skip_connection",
}
_UNET_FIXED = {
    "time_embedding.linear_1.": "time_embed.0.",
    "time_embedding.linear_2.": "time_embed.2.",
    "add_embedding.linear_1.": "label_emb.0.0.",
    "add_embedding.linear_2.": "label_emb.0.2.",
    "conv_in.": "input_blocks.0.0.",
    "conv_norm_out.": "out.0.",
    "conv_out.": "out.2.",
}


def _resnet(rest: str) -> str:
    layer, _, tail = rest.partition(".")
    return f"{_RESNET[layer]}.{tail}"


def unet_source(key: str, config: dict[str, Any]) -> Source:
    """Where diffusers UNet parameter ``key`` comes from, for a UNet built from ``config``."""
    for new, old in _UNET_FIXED.items():
        if key.startswith(new):
            return Source(UNET_PREFIX + old + key[len(new) :])
    span = config["layers_per_block"] + 1  # resnets per level, plus the down/up sampler slot
    if m := re.match(r"down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.*)", key):
        block, kind, layer, rest = int(m[1]), m[2], int(m[3]), m[4]
        index = 1 + block * span + layer
        name = f"{index}.0.{_resnet(rest)}" if kind == "resnets" else f"{index}.1.{rest}"
        return Source(f"{UNET_PREFIX}input_blocks.{name}")
    if m := re.match(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.*)", key):
        return Source(f"{UNET_PREFIX}input_blocks.{(int(m[1]) + 1) * span}.0.op.{m[2]}")
    if m := re.match(r"mid_block\.resnets\.(\d)\.(.*)", key):
        return Source(f"{UNET_PREFIX}middle_block.{2 * int(m[1])}.{_resnet(m[2])}")
    if m := re.match(r"mid_block\.attentions\.0\.(.*)", key):
        return Source(f"{UNET_PREFIX}middle_block.1.{m[1]}")
    if m := re.match(r"up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.*)", key):
        block, kind, layer, rest = int(m[1]), m[2], int(m[3]), m[4]
        index = block * span + layer
        name = f"{index}.0.{_resnet(rest)}" if kind == "resnets" else f"{index}.1.{rest}"
        return Source(f"{UNET_PREFIX}output_blocks.{name}")
    if m := re.match(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.*)", key):
        block = int(m[1])
        # the upsampler follows the resnet (and the transformer, in a cross-attention block)
        slot = 2 if config["up_block_types"][block].startswith("CrossAttn") else 1
        return Source(f"{UNET_PREFIX}output_blocks.{block * span + span - 1}.{slot}.conv.{m[2]}")
    raise KeyError(f"no original name known for UNet parameter {key!r}")


# --- VAE ------------------------------------------------------------------------------------------

_VAE_ATTN = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}


def _vae_resnet(rest: str) -> str:
    return rest.replace("conv_shortcut", "nin_shortcut")


def _vae_attention(rest: str) -> Source:
    layer, _, tail = rest.rpartition(".")
    key = f"{_VAE_ATTN[layer]}.{tail}"
    # the original VAE attention uses 1×1 convolutions where diffusers uses linear layers
    op = "conv1x1" if tail == "weight" and layer != "group_norm" else "copy"
    return Source(key, op)


def vae_source(key: str, config: dict[str, Any], prefix: str = VAE_PREFIX) -> Source:
    """Where diffusers AutoencoderKL parameter ``key`` comes from; ``prefix``: the VAE's level in the
    file (``first_stage_model.`` in a checkpoint, none in a standalone VAE file such as ``sdxl_vae``)."""
    levels = len(config["block_out_channels"])
    part, _, rest = key.partition(".")
    if part in ("quant_conv", "post_quant_conv") or rest.startswith(("conv_in.", "conv_out.")):
        return Source(prefix + key)
    if rest.startswith("conv_norm_out."):
        return Source(f"{prefix}{part}.norm_out.{rest[len('conv_norm_out.') :]}")
    if m := re.match(r"mid_block\.resnets\.(\d)\.(.*)", rest):
        return Source(f"{prefix}{part}.mid.block_{int(m[1]) + 1}.{m[2]}")
    if m := re.match(r"mid_block\.attentions\.0\.(.*)", rest):
        inner = _vae_attention(m[1])
        return Source(f"{prefix}{part}.mid.attn_1.{inner.key}", inner.op)
    if m := re.match(r"down_blocks\.(\d+)\.resnets\.(\d+)\.(.*)", rest):
        return Source(f"{prefix}encoder.down.{m[1]}.block.{m[2]}.{_vae_resnet(m[3])}")
    if m := re.match(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.*)", rest):
        return Source(f"{prefix}encoder.down.{m[1]}.downsample.conv.{m[2]}")
    # the original numbers decoder levels from the output side, diffusers from the latent side
    if m := re.match(r"up_blocks\.(\d+)\.resnets\.(\d+)\.(.*)", rest):
        level = levels - 1 - int(m[1])
        return Source(f"{prefix}decoder.up.{level}.block.{m[2]}.{_vae_resnet(m[3])}")
    if m := re.match(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.*)", rest):
        level = levels - 1 - int(m[1])
        return Source(f"{prefix}decoder.up.{level}.upsample.conv.{m[2]}")
    raise KeyError(f"no original name known for VAE parameter {key!r}")


# --- Text encoders --------------------------------------------------------------------------------


def clip_l_source(key: str) -> Source:
    """Where a transformers ``CLIPTextModel`` parameter comes from (same names below the prefix)."""
    # transformers 4 nests the model under ``text_model.``, transformers 5 does not
    return Source(CLIP_L_PREFIX + key.removeprefix("text_model."))


_OPEN_CLIP_LAYER = {
    "layer_norm1": "ln_1",
    "layer_norm2": "ln_2",
    "mlp.fc1": "mlp.c_fc",
    "mlp.fc2": "mlp.c_proj",
    "self_attn.out_proj": "attn.out_proj",
}
_OPEN_CLIP_FIXED = {
    "embeddings.token_embedding.weight": Source(CLIP_G_PREFIX + "token_embedding.weight"),
    "embeddings.position_embedding.weight": Source(CLIP_G_PREFIX + "positional_embedding"),
    "final_layer_norm.weight": Source(CLIP_G_PREFIX + "ln_final.weight"),
    "final_layer_norm.bias": Source(CLIP_G_PREFIX + "ln_final.bias"),
}


def clip_g_source(key: str) -> Source:
    """Where a transformers ``CLIPTextModelWithProjection`` parameter comes from in OpenCLIP bigG."""
    if key == "text_projection.weight":
        return Source(CLIP_G_PREFIX + "text_projection", "transpose")
    inner = key.removeprefix("text_model.")
    if inner in _OPEN_CLIP_FIXED:
        return _OPEN_CLIP_FIXED[inner]
    m = re.match(r"encoder\.layers\.(\d+)\.(.*)\.(weight|bias)$", inner)
    if m is None:
        raise KeyError(f"no original name known for text encoder 2 parameter {key!r}")
    block = f"{CLIP_G_PREFIX}transformer.resblocks.{m[1]}"
    layer, kind = m[2], m[3]
    if qkv := re.fullmatch(r"self_attn\.([qkv])_proj", layer):
        # OpenCLIP fuses q, k and v into one in_proj tensor, in that order
        return Source(f"{block}.attn.in_proj_{kind}", "chunk", "qkv".index(qkv[1]))
    return Source(f"{block}.{_OPEN_CLIP_LAYER[layer]}.{kind}")
