"""Architectures read from safetensors headers (no torch): the published tensor layouts in the shared
fixtures, the tiny test files, and the keys ComfyUI's model detection looks for."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from tests.support import FIXTURES
from visionatrix.errors import InvalidInput
from visionatrix.models.architecture import KINDS, detect_kind, file_kind, read_header, tensor_names
from visionatrix.models.catalog import builtin_kinds, load_builtin_catalog

SDXL_KEYS = frozenset(
    json.loads((FIXTURES / "sdxl" / "sdxl_checkpoint.state_dict.json").read_text())["tensors"]
)


def birefnet_keys(variant: str) -> frozenset[str]:
    path = FIXTURES / "birefnet" / f"birefnet_{variant}.state_dict.json"
    return frozenset(json.loads(path.read_text())["tensors"])


def write_header(path: Path, names: list[str], metadata: dict[str, str] | None = None) -> Path:
    """A valid safetensors file whose tensors are one float16 value each."""
    header: dict[str, object] = {
        name: {"dtype": "F16", "shape": [1], "data_offsets": [2 * i, 2 * i + 2]}
        for i, name in enumerate(names)
    }
    if metadata:
        header["__metadata__"] = metadata
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0\0" * len(names))
    return path


def test_the_published_sdxl_layout_is_sdxl() -> None:
    assert detect_kind(SDXL_KEYS) == "sdxl"


def test_playground_is_sdxl_plus_its_edm_tensors() -> None:
    assert detect_kind(SDXL_KEYS | {"edm_mean", "edm_std"}) == "playground-v2.5"
    assert detect_kind(SDXL_KEYS | {"v_pred"}) == "sdxl-vpred"


def test_sd1_and_refiner_layouts_are_not_sdxl() -> None:
    unet = {k for k in SDXL_KEYS if k.startswith("model.diffusion_model.") and "label_emb" not in k}
    sd1 = unet | {"cond_stage_model.transformer.text_model.final_layer_norm.weight"}
    assert detect_kind(sd1) == "sd1"
    refiner = unet | {
        "model.diffusion_model.label_emb.0.0.weight",
        "conditioner.embedders.0.model.ln_final.weight",
    }
    assert detect_kind(refiner) == "sdxl-refiner"


@pytest.mark.parametrize("variant", ["general", "lite"])
def test_the_published_birefnet_layouts_are_birefnet(variant: str) -> None:
    assert detect_kind(birefnet_keys(variant)) == "birefnet"


@pytest.mark.parametrize(
    ("keys", "kind"),
    [
        ({"double_blocks.0.img_attn.qkv.weight", "img_in.weight"}, "flux"),
        ({"model.diffusion_model.double_blocks.0.img_attn.qkv.weight"}, "flux"),
        ({"model.diffusion_model.joint_blocks.0.context_block.attn.qkv.weight"}, "sd3"),
        ({"model.diffusion_model.mlp_t5.0.weight"}, "hunyuan-dit"),
        ({"model.cond_seq_linear.weight"}, None),  # a prefix nobody uses
        ({"encoder.conv_in.weight", "decoder.conv_in.weight", "quant_conv.weight"}, "sd-vae"),
        ({"encoder.conv_in.weight", "decoder.conv_in.weight"}, "flux-vae"),
        ({"lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_k.lora_down.weight"}, "sdxl-lora"),
        ({"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight"}, "sd1-lora"),
        ({"transformer.single_transformer_blocks.0.attn.to_k.lora_A.weight"}, "flux-lora"),
        ({"something.else"}, None),
    ],
)
def test_telltale_keys(keys: set[str], kind: str | None) -> None:
    assert detect_kind(keys) == kind


def test_a_file_header_is_read_without_reading_the_weights(tmp_path: Path) -> None:
    path = write_header(
        tmp_path / "m.safetensors", sorted(SDXL_KEYS | {"edm_mean", "edm_std"}), {"format": "pt"}
    )
    header = read_header(path)
    assert header["__metadata__"] == {"format": "pt"}
    assert tensor_names(header) == SDXL_KEYS | {"edm_mean", "edm_std"}
    assert file_kind(path) == "playground-v2.5"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"abc", "too short"),
        (struct.pack("<Q", 1 << 40) + b"{}", "header length"),
        (struct.pack("<Q", 5) + b"{nope", "not JSON"),
        (struct.pack("<Q", 2) + b"[]", "not a JSON object"),
    ],
)
def test_a_file_that_is_not_safetensors_is_named(tmp_path: Path, data: bytes, message: str) -> None:
    path = tmp_path / "bad.safetensors"
    path.write_bytes(data)
    with pytest.raises(InvalidInput, match=message):
        read_header(path)


def test_every_catalog_kind_is_a_known_architecture() -> None:
    assert set(builtin_kinds().values()) <= set(KINDS)
    catalog = load_builtin_catalog()
    assert set(builtin_kinds()) <= set(catalog)
    # every checkpoint, diffusion model, VAE, LoRA and background-removal file has a known architecture
    kinds_needed = {"checkpoints", "diffusion_models", "vae", "birefnet", "rembg"}
    unknown = [e.name for e in catalog.values() if e.folder in kinds_needed and e.kind is None]
    assert unknown == [], unknown
