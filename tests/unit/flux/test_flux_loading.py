"""Flux files in the published layouts load through the real loaders: names, dtypes, memory rules."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from tests.unit.flux.conftest import CHECKPOINT, CLIP_L, DEV, FILL, SCHNELL, T5, T5_FP8, run
from visionatrix.engine.context import NodeContext
from visionatrix.engine.nets import flux_keys, flux_loader, memory, weights
from visionatrix.engine.nodes import flux as flux_nodes
from visionatrix.errors import InvalidInput, NotEnoughMemory
from visionatrix.models.architecture import file_kind
from visionatrix.models.cache import ModelStore


def test_tiny_files_carry_the_published_names_and_dtypes(flux_models: Path) -> None:
    with safe_open(str(flux_models / "diffusion_models" / DEV), "pt") as f:
        names = set(f.keys())
        assert f.get_slice("double_blocks.0.img_attn.qkv.weight").get_dtype() == "F8_E4M3"
    for name in (
        "img_in.weight",
        "guidance_in.in_layer.weight",
        "single_blocks.0.linear1.weight",
        "final_layer.adaLN_modulation.1.weight",
        "double_blocks.0.txt_attn.norm.key_norm.scale",
    ):
        assert name in names
    with safe_open(str(flux_models / "diffusion_models" / SCHNELL), "pt") as f:
        assert "guidance_in.in_layer.weight" not in set(f.keys())
        assert f.get_slice("img_in.weight").get_dtype() == "BF16"
    dtypes = weights.header_dtypes(flux_models / "text_encoders" / T5_FP8)
    assert dtypes["encoder.block.0.layer.0.SelfAttention.q.weight"] == "F8_E4M3"
    assert "text_model.final_layer_norm.weight" in weights.header_shapes(
        flux_models / "text_encoders" / CLIP_L
    )


@pytest.mark.parametrize(
    ("folder", "name", "kind"),
    [
        ("diffusion_models", DEV, "flux"),
        ("diffusion_models", FILL, "flux"),
        ("text_encoders", T5, "t5-v1.1"),
        ("text_encoders", T5_FP8, "t5-v1.1"),
        ("text_encoders", CLIP_L, "clip-l"),
        ("vae", "ae.safetensors", "flux-vae"),
        ("checkpoints", CHECKPOINT, "flux"),
    ],
)
def test_architectures_are_read_from_the_headers(
    flux_models: Path, folder: str, name: str, kind: str
) -> None:
    assert file_kind(flux_models / folder / name) == kind


def test_the_spec_comes_from_the_header(flux_models: Path) -> None:
    dev = flux_loader.read_spec(flux_models / "diffusion_models" / DEV)
    assert (dev.shape.hidden, dev.head_dim, dev.heads, dev.shape.guidance) == (64, 32, 2, True)
    assert (dev.in_channels, dev.out_channels, dev.context_dim, dev.prefix) == (16, 16, 32, "")
    assert flux_loader.read_spec(flux_models / "diffusion_models" / FILL).in_channels == 96
    assert (
        flux_loader.read_spec(flux_models / "checkpoints" / CHECKPOINT).prefix == flux_keys.CHECKPOINT_PREFIX
    )
    assert flux_loader.rope_axes(128) == (16, 56, 56)  # the published model's axes
    with pytest.raises(InvalidInput, match="not a Flux"):
        flux_loader.read_spec(flux_models / "text_encoders" / CLIP_L)


def test_8_bit_weights_stay_8_bit_and_run(ctx: NodeContext) -> None:
    (model,) = run("UNETLoader", ctx, unet_name=DEV, weight_dtype="fp8_e4m3fn")
    block = model.unet.transformer.transformer_blocks[0]
    assert block.attn.to_q.weight.dtype == torch.float8_e4m3fn  # kept 8-bit between calls
    assert block.attn.norm_q.weight.dtype == torch.float32  # norms at the compute dtype
    (default,) = run("UNETLoader", ctx, unet_name=SCHNELL, weight_dtype="default")
    assert default.unet.transformer.x_embedder.weight.dtype == torch.float32  # a bf16 file at float32
    with pytest.raises(InvalidInput, match="weight_dtype"):
        run("UNETLoader", ctx, unet_name=DEV, weight_dtype="int4")


def test_the_8_bit_file_upcasts_like_its_bf16_twin(ctx: NodeContext, flux_models: Path) -> None:
    """The fp8 file's weights, cast up for compute, are exactly the file's fp8 values."""
    (model,) = run("UNETLoader", ctx, unet_name=DEV, weight_dtype="default")
    with safe_open(str(flux_models / "diffusion_models" / DEV), "pt") as f:
        fused = f.get_tensor("double_blocks.0.img_attn.qkv.weight")
    q = model.unet.transformer.transformer_blocks[0].attn.to_q.weight
    assert torch.equal(q.float(), fused[: q.shape[0]].float())


def test_dual_clip_loader_finds_which_file_is_which(ctx: NodeContext) -> None:
    (a,) = run("DualCLIPLoader", ctx, clip_name1=CLIP_L, clip_name2=T5_FP8, type="flux")
    (b,) = run("DualCLIPLoader", ctx, clip_name1=T5_FP8, clip_name2=CLIP_L, type="flux")
    assert a is b  # the same files: the same cached encoders
    with pytest.raises(InvalidInput, match="type 'sd3'"):
        run("DualCLIPLoader", ctx, clip_name1=T5, clip_name2=CLIP_L, type="sd3")
    with pytest.raises(InvalidInput, match="one T5-XXL and one CLIP-L"):
        run("DualCLIPLoader", ctx, clip_name1=T5, clip_name2=T5_FP8, type="flux")


def test_an_all_in_one_checkpoint_loads_all_three(ctx: NodeContext, flux_models: Path) -> None:
    model, clip, vae = run("CheckpointLoaderSimple", ctx, ckpt_name=CHECKPOINT)
    assert model.unet.guidance_embeds and model.latent_format.channels == 16
    states, pooled = clip.encode("a cat", "a cat", lambda: None)
    assert states.shape == (1, 256, 32) and pooled.shape == (1, 32)
    assert vae.vae.config.latent_channels == 16


def test_a_model_that_cannot_fit_is_refused_with_the_numbers(
    ctx: NodeContext, flux_models: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a machine with 1 GiB free the transformer (plus its working memory) does not fit: refused
    before a byte is read, with what it needs, what is free and what to change."""
    monkeypatch.setattr(memory, "free_bytes", lambda device, meminfo=None: 1 << 30)
    ctx = NodeContext(dataclasses.replace(ctx.env, models=ModelStore(flux_models)), "1", "test")
    with pytest.raises(
        NotEnoughMemory, match=r"needs \d+\.\d GiB on cpu, but only 1\.0 GiB is free; weight_dtype fp8"
    ):
        run("UNETLoader", ctx, unet_name=SCHNELL, weight_dtype="default")


def test_cached_models_are_evicted_to_make_room(ctx: NodeContext, monkeypatch: pytest.MonkeyPatch) -> None:
    run("DualCLIPLoader", ctx, clip_name1=CLIP_L, clip_name2=T5, type="flux")
    assert ctx.models.keys()
    monkeypatch.setattr(memory, "free_bytes", lambda device, meminfo=None: 0)
    with pytest.raises(NotEnoughMemory):
        memory.ensure_fits("something big", 1 << 40, "cpu", ctx.models)
    assert ctx.models.keys() == []  # everything cached was let go before refusing


def test_free_memory_is_read_from_meminfo(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24000000 kB\nMemAvailable:    1234567 kB\n")
    assert memory.free_bytes("cpu", meminfo) == 1234567 * 1024
    assert memory.free_bytes("cpu", tmp_path / "absent") is None


FLUX_FLOWS = (
    "flux1_dev",
    "flux1_schnell",
    "sketch_pencil",
    "animal_clothing",
    "flux1_kontext",
    "to_ghibli",
    "restore_old_photo",
    "colorful_xl_inpaint",
    "flux1_dev_inpaint",
    "flux1_schnell_inpaint",
    "flux1_extend",
)


def test_tiny_models_writes_every_file_of_the_flux_flows_in_its_catalog_kind(tmp_path: Path) -> None:
    from visionatrix.testing.tiny_models import flow_graphs, plan, write_planned

    items = plan(flow_graphs(FLUX_FLOWS))
    assert {i.entry.relpath: i.skipped for i in items if i.skipped} == {}
    written = write_planned(tmp_path, items)
    kinds = {item.entry.relpath: item.entry.kind for item in items}
    assert {kinds[p.relative_to(tmp_path).as_posix()] for p in written} >= {
        "flux",
        "t5-v1.1",
        "clip-l",
        "flux-vae",
        "flux-lora",
        "sdxl",
        "sd-vae",
    }
    for path in written:
        assert file_kind(path) == kinds[path.relative_to(tmp_path).as_posix()], path


def test_a_vae_out_of_gpu_memory_decodes_in_tiles(ctx: NodeContext, monkeypatch: pytest.MonkeyPatch) -> None:
    """No GPU here to run out of memory: the decoder raises CUDA's out-of-memory error whenever it is
    asked for a whole 128² latent, as a small card would; the retry decodes in diffusers' tiles."""
    vae = flux_nodes.load_vae(ctx, ctx.models.path(flux_nodes.VAE_FOLDER, "ae.safetensors")).vae
    whole = vae.vae._decode
    calls: list[bool] = []

    def decode(z: torch.Tensor, *args: object, **kwargs: object) -> object:
        calls.append(vae.vae.use_tiling)
        if not vae.vae.use_tiling and z.shape[-1] >= 128:
            raise torch.OutOfMemoryError("CUDA out of memory")
        return whole(z, *args, **kwargs)

    monkeypatch.setattr(vae.vae, "_decode", decode)
    with torch.inference_mode():
        image = vae.decode(torch.randn(1, 16, 128, 128)).sample
    assert image.shape == (1, 3, 1024, 1024) and calls[0] is False and True in calls[1:]
    assert vae.vae.use_tiling is False  # back to whole decodes for the next image
