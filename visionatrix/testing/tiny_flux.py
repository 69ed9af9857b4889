"""Tiny randomly initialised Flux-family files in the published layouts, names and dtypes.

- transformers (``flux1-dev.sft``, ``flux1-schnell``, ``flux1-kontext-dev``, ``flux1-fill-dev``,
  the 8-bit ``*fp8*`` files): BFL's names (``double_blocks.N.img_attn.qkv.weight``...), bfloat16
  or float8_e4m3fn like the published files; schnell without a guidance embedder, Fill with 384
  input features. One double and one single block, 64 wide (2 heads of 32).
- text encoders: ``t5xxl_*`` (transformers' T5EncoderModel names, gated-GELU like T5 v1.1; fp16, or
  float8_e4m3fn for ``*fp8*``) and ``clip_l`` (``text_model.`` names, float16), with the real
  vocabulary sizes so the real tokenizers drive them; 32 wide.
- ``ae.safetensors``: BFL's autoencoder names, four levels (8 pixels per latent cell), 16 latent
  channels, float32 as published.
- an all-in-one checkpoint (Comfy-Org's ``flux1-dev-fp8.safetensors``): the three above under
  ``model.diffusion_model.``, ``text_encoders.{clip_l,t5xxl}.transformer.`` and ``vae.``.

Each network is built by diffusers / transformers and written out through the loaders' own name
tables run backwards, so a tiny file exercises exactly the code that reads the published one.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from visionatrix.engine.nets import flux_keys, sdxl_keys

if TYPE_CHECKING:
    import torch

T5_WIDTH, CLIP_WIDTH = 32, 32
T5_VOCAB, CLIP_VOCAB = 32128, 49408


def transformer_config(*, guidance: bool = True, fill: bool = False) -> dict[str, Any]:
    from visionatrix.engine.nets.flux_loader import rope_axes

    return {
        "patch_size": 1,
        "in_channels": 384 if fill else 64,
        "out_channels": 64,
        "num_layers": 1,
        "num_single_layers": 1,
        "attention_head_dim": 32,
        "num_attention_heads": 2,
        "joint_attention_dim": T5_WIDTH,
        "pooled_projection_dim": CLIP_WIDTH,
        "guidance_embeds": guidance,
        "axes_dims_rope": rope_axes(32),
    }


def transformer_tensors(config: dict[str, Any], seed: int) -> dict[str, torch.Tensor]:
    """A random diffusers transformer of ``config`` under BFL's names (``flux_keys`` run backwards)."""
    import torch
    from diffusers import FluxTransformer2DModel

    torch.manual_seed(seed)
    model = FluxTransformer2DModel(**config)
    shape = flux_keys.FluxShape(
        hidden=config["num_attention_heads"] * config["attention_head_dim"],
        double_blocks=config["num_layers"],
        single_blocks=config["num_single_layers"],
        guidance=config["guidance_embeds"],
    )
    sources = flux_keys.transformer_sources(shape)
    out: dict[str, torch.Tensor] = {}
    fused: dict[str, dict[int, torch.Tensor]] = defaultdict(dict)
    for name, tensor in model.state_dict().items():
        source = sources[name]
        if source.op == "rows":
            fused[source.key][source.start] = tensor
        elif source.op == "swap":
            first, second = tensor.chunk(2)
            out[source.key] = torch.cat([second, first])
        else:
            out[source.key] = tensor
    for key, parts in fused.items():
        out[key] = torch.cat([parts[i] for i in sorted(parts)])
    return out


def t5_tensors(seed: int) -> dict[str, torch.Tensor]:
    import torch
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(seed)
    config = T5Config(
        vocab_size=T5_VOCAB,
        d_model=T5_WIDTH,
        d_kv=16,
        d_ff=64,
        num_layers=2,
        num_heads=2,
        feed_forward_proj="gated-gelu",
        is_encoder_decoder=False,
        use_cache=False,
    )
    model = T5EncoderModel(config)
    return {k: v for k, v in model.state_dict().items() if k != "encoder.embed_tokens.weight"}


def clip_tensors(seed: int) -> dict[str, torch.Tensor]:
    import torch
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    config = CLIPTextConfig(
        vocab_size=CLIP_VOCAB,
        hidden_size=CLIP_WIDTH,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=77,
        hidden_act="quick_gelu",
        eos_token_id=2,
    )
    model = CLIPTextModel(config)
    return {"text_model." + k.removeprefix("text_model."): v for k, v in model.state_dict().items()}


def vae_tensors(seed: int) -> dict[str, torch.Tensor]:
    import torch
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    config = {
        "block_out_channels": [8, 16, 16, 16],
        "down_block_types": ["DownEncoderBlock2D"] * 4,
        "up_block_types": ["UpDecoderBlock2D"] * 4,
        "layers_per_block": 1,
        "latent_channels": 16,
        "norm_num_groups": 8,
        "use_quant_conv": False,
        "use_post_quant_conv": False,
    }
    vae = AutoencoderKL(**config)
    strip = len(sdxl_keys.VAE_PREFIX)
    out = {}
    for name, tensor in vae.state_dict().items():
        source = sdxl_keys.vae_source(name, config)
        out[source.key[strip:]] = tensor[:, :, None, None] if source.op == "conv1x1" else tensor
    return out


def _save(tensors: dict[str, torch.Tensor], path: Path) -> Path:
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous() for k, v in tensors.items()}, str(path), metadata={"format": "pt"})
    return path


def _cast(tensors: dict[str, torch.Tensor], dtype: torch.dtype, fp8: bool) -> dict[str, torch.Tensor]:
    """``dtype`` throughout; with ``fp8`` the 2-D weights float8_e4m3fn, as the 8-bit files store them."""
    import torch

    def one(name: str, t: torch.Tensor) -> torch.Tensor:
        if fp8 and t.ndim == 2 and name.endswith("weight") and "embed" not in name and "shared" not in name:
            return t.clamp(-448, 448).to(torch.float8_e4m3fn)
        return t.to(dtype)

    return {k: one(k, v) for k, v in tensors.items()}


def write_transformer(
    path: Path, *, seed: int = 0, guidance: bool = True, fill: bool = False, fp8: bool = False
) -> Path:
    import torch

    tensors = transformer_tensors(transformer_config(guidance=guidance, fill=fill), seed)
    return _save(_cast(tensors, torch.bfloat16, fp8), path)


def write_t5(path: Path, *, seed: int = 0, fp8: bool = False) -> Path:
    import torch

    return _save(_cast(t5_tensors(seed), torch.float16, fp8), path)


def write_clip_l(path: Path, *, seed: int = 0) -> Path:
    import torch

    return _save(_cast(clip_tensors(seed), torch.float16, False), path)


def write_vae(path: Path, *, seed: int = 0) -> Path:
    return _save(vae_tensors(seed), path)


def write_checkpoint(path: Path, *, seed: int = 0) -> Path:
    """Comfy-Org's all-in-one layout: an 8-bit dev transformer, both text encoders and the VAE."""
    import torch

    parts = {
        flux_keys.CHECKPOINT_PREFIX: _cast(
            transformer_tensors(transformer_config(), seed), torch.bfloat16, True
        ),
        "text_encoders.t5xxl.transformer.": _cast(t5_tensors(seed + 1), torch.float16, True),
        "text_encoders.clip_l.transformer.": _cast(clip_tensors(seed + 2), torch.float16, False),
        "vae.": vae_tensors(seed + 3),
    }
    return _save({prefix + k: v for prefix, tensors in parts.items() for k, v in tensors.items()}, path)


RANK, ALPHA = 4, 2.0
LORA_SPELLINGS = ("kohya", "comfyui", "peft")
_BFL_LINEAR = (
    "img_attn.qkv",
    "img_attn.proj",
    "txt_attn.qkv",
    "txt_attn.proj",
    "img_mlp.0",
    "img_mlp.2",
    "txt_mlp.0",
    "txt_mlp.2",
    "img_mod.lin",
    "txt_mod.lin",
    "linear1",
    "linear2",
    "modulation.lin",
)
_DIFFUSERS_LINEAR = (
    "to_q",
    "to_k",
    "to_v",
    "to_out.0",
    "add_q_proj",
    "add_k_proj",
    "add_v_proj",
    "to_add_out",
    "ff.net.0.proj",
    "ff.net.2",
    "proj_mlp",
    "proj_out",
)


def lora_tensors(spelling: str = "kohya", *, seed: int = 0, clip: bool = True) -> dict[str, torch.Tensor]:
    """A random LoRA for the tiny dev transformer (and CLIP-L's attention, ``clip``) in one of the
    spellings Flux LoRAs are published in: kohya (``lora_unet_double_blocks_0_img_attn_qkv``,
    ``lora_up``/``lora_down`` + ``alpha``), ComfyUI (``diffusion_model.double_blocks.0.img_attn.qkv``)
    or PEFT/diffusers (``transformer.transformer_blocks.0.attn.to_q``, ``lora_A``/``lora_B``)."""
    import torch

    shapes = {k: tuple(v.shape) for k, v in transformer_tensors(transformer_config(), 0).items()}
    layers: dict[str, tuple[int, int]] = {}
    if spelling == "peft":
        config = transformer_config()
        shape = flux_keys.FluxShape(64, config["num_layers"], config["num_single_layers"], True)
        for param, source in flux_keys.transformer_sources(shape).items():
            layer = param.removesuffix(".weight")
            if (
                param.endswith(".weight")
                and layer.split(".", 2)[-1].endswith(_DIFFUSERS_LINEAR)
                and "blocks" in layer
            ):
                rows = source.stop - source.start if source.op == "rows" else shapes[source.key][0]
                layers[f"transformer.{layer}"] = (rows, shapes[source.key][1])
    else:
        for key, shape in shapes.items():
            name = key.removesuffix(".weight")
            if key.endswith(".weight") and name.endswith(_BFL_LINEAR) and "blocks" in name:
                layer = (
                    f"lora_unet_{name.replace('.', '_')}"
                    if spelling == "kohya"
                    else f"diffusion_model.{name}"
                )
                layers[layer] = shape
    if clip:
        for i in range(2):
            for part in ("q_proj", "v_proj"):
                layers[f"lora_te1_text_model_encoder_layers_{i}_self_attn_{part}"] = (CLIP_WIDTH, CLIP_WIDTH)
    generator = torch.Generator().manual_seed(seed)
    up, down = (
        (".lora_B.weight", ".lora_A.weight")
        if spelling == "peft"
        else (".lora_up.weight", ".lora_down.weight")
    )
    out: dict[str, torch.Tensor] = {}
    for layer, (rows, cols) in sorted(layers.items()):
        out[layer + down] = torch.randn(RANK, cols, generator=generator) * 0.3
        out[layer + up] = torch.randn(rows, RANK, generator=generator) * 0.3
        if spelling != "peft":
            out[layer + ".alpha"] = torch.tensor(ALPHA)
    return {k: v.to(torch.bfloat16) for k, v in out.items()}


def write_lora(path: Path, spelling: str = "kohya", *, seed: int = 0) -> Path:
    return _save(lora_tensors(spelling, seed=seed, clip=spelling == "kohya"), path)
