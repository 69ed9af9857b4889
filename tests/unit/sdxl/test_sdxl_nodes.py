"""SDXL nodes on a tiny real-layout checkpoint: loading, text encoding, sampling, decoding.

The tiny checkpoint (``visionatrix.testing.tiny_sdxl``) has the published files' tensor names and
depth, so it loads through the same code as the 6.9 GB ``sdxl_lightning_*step.safetensors``; the
fixture manifest (``fixtures/sdxl``) stands in for the real file's layout.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from safetensors.torch import load_file, save_file  # noqa: E402

from tests.support import FIXTURES  # noqa: E402
from tests.unit.sdxl.chain import CKPT, assert_image, generate, make_ctx, run  # noqa: E402
from visionatrix.engine.context import NodeContext, RunEnv  # noqa: E402
from visionatrix.engine.executor import run_graph  # noqa: E402
from visionatrix.engine.nets import sdxl_keys as keys  # noqa: E402
from visionatrix.engine.nets import sdxl_loader as loader  # noqa: E402
from visionatrix.engine.nets.sdxl_text import token_windows, tokenizer  # noqa: E402
from visionatrix.errors import Cancelled, InvalidInput  # noqa: E402
from visionatrix.models.cache import ModelStore  # noqa: E402
from visionatrix.models.device import choose_precision  # noqa: E402
from visionatrix.testing.tiny_sdxl import tiny_configs  # noqa: E402

pytestmark = pytest.mark.models

SHARED = FIXTURES
MANIFEST = SHARED / "sdxl" / "sdxl_checkpoint.state_dict.json"
FLOW = SHARED / "vixflows" / "flows" / "sdxl_lighting.json"
needs_manifest = pytest.mark.skipif(not MANIFEST.is_file(), reason="shared SDXL layout fixture not present")
needs_flow = pytest.mark.skipif(not FLOW.is_file(), reason="shared Visionatrix flow fixtures not present")


# --- tokenizers -------------------------------------------------------------------------------------


def test_tokenizer_gives_clip_ids() -> None:
    assert tokenizer("tokenizer")("a photo of a cat")["input_ids"] == [
        49406,
        320,
        1125,
        539,
        320,
        2368,
        49407,
    ]
    assert len(tokenizer("tokenizer")) == len(tokenizer("tokenizer_2")) == 49408


def test_token_windows_pad_each_encoder_its_own_way() -> None:
    (l_ids,) = token_windows("a photo of a cat", "tokenizer")
    (g_ids,) = token_windows("a photo of a cat", "tokenizer_2")
    assert len(l_ids) == len(g_ids) == 77
    assert l_ids[:7] == g_ids[:7] == [49406, 320, 1125, 539, 320, 2368, 49407]
    assert set(l_ids[7:]) == {49407} and set(g_ids[7:]) == {0}  # bigG pads with "!"
    long = token_windows("cat " * 100, "tokenizer")
    assert [len(w) for w in long] == [77, 77] and long[1][1:26] == [2368] * 25


# --- the checkpoint layout ----------------------------------------------------------------------------


@needs_manifest
def test_tiny_checkpoint_has_the_published_tensor_names(models_dir: Path) -> None:
    """The manifest is the published file's exact layout; the tiny file has its every tensor name."""
    manifest = set(json.loads(MANIFEST.read_text())["tensors"])
    written = set(load_file(models_dir / "checkpoints" / CKPT))
    assert "conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight" in manifest
    assert manifest <= written
    # beyond the manifest only the bookkeeping tensors the published files also carry
    assert {n for n in written - manifest if not keys.is_bookkeeping(n)} == set()
    assert len(manifest) == 2513


@needs_manifest
def test_the_lean_tiny_checkpoint_has_only_published_names(tmp_path: Path) -> None:
    """The lean variant drops transformer blocks and nothing else: every published name it lacks belongs
    to a dropped transformer block of the UNet, and it has one pair the published file has not: the
    second level's upsampler sits in slot 1 of ``output_blocks.5`` where that level has no transformer
    (the original layout's rule for such a level), not in slot 2 behind it."""
    from visionatrix.testing.tiny_sdxl import write_tiny_sdxl_checkpoint

    manifest = set(json.loads(MANIFEST.read_text())["tensors"])
    path = write_tiny_sdxl_checkpoint(tmp_path / "lean.safetensors", seed=0, layout="lean")
    written = {n for n in load_file(path) if not keys.is_bookkeeping(n)}
    moved = {f"model.diffusion_model.output_blocks.5.{{}}.conv.{kind}" for kind in ("weight", "bias")}
    assert written - manifest == {n.format(1) for n in moved}
    assert {n.format(2) for n in moved} <= manifest - written
    manifest -= {n.format(2) for n in moved}
    dropped = {n.split(".transformer_blocks.")[0] for n in manifest - written}
    assert dropped == {
        f"model.diffusion_model.{block}.1"
        for block in ("input_blocks.4", "input_blocks.5", "input_blocks.7", "input_blocks.8", "middle_block")
        + tuple(f"output_blocks.{i}" for i in range(6))
    } | {
        f"model.diffusion_model.{block}.1.{part}"
        for block in ("input_blocks.4", "input_blocks.5") + tuple(f"output_blocks.{i}" for i in (3, 4, 5))
        for part in (
            "norm.weight",
            "norm.bias",
            "proj_in.weight",
            "proj_in.bias",
            "proj_out.weight",
            "proj_out.bias",
        )
    }
    assert loader.infer_configs(loader.read_shapes(path)) == tiny_configs("lean")


@needs_manifest
def test_configs_from_the_full_size_layout_are_sdxl_base_and_cover_every_tensor() -> None:
    tensors = json.loads(MANIFEST.read_text())["tensors"]
    shapes = {keys.canonical_name(name): tuple(shape) for name, shape in tensors.items()}
    configs = loader.infer_configs(shapes)
    used: set[str] = set()
    for component in loader.COMPONENTS:
        assert configs[component] == loader.builtin_config(component)
        module = loader.build_empty(component, configs[component])
        source = loader.source_of(component, configs[component])
        for key, param in module.state_dict().items():
            src = source(key)
            expected = {
                "conv1x1": lambda s: s[:2],
                "transpose": lambda s: s[::-1],
                "chunk": lambda s: (s[0] // 3, *s[1:]),
            }.get(src.op, lambda s: s)(shapes[src.key])
            assert tuple(param.shape) == expected, key
            used.add(src.key)
    assert used == set(shapes)


def test_tiny_shapes_give_the_tiny_configs(models_dir: Path) -> None:
    assert loader.infer_configs(loader.read_shapes(models_dir / "checkpoints" / CKPT)) == tiny_configs()


def test_loading_matches_diffusers_own_single_file_conversion(models_dir: Path, tmp_path: Path) -> None:
    """diffusers converts the same file through its own mapping: UNet, VAE and ViT-L must agree exactly."""
    from diffusers import StableDiffusionXLPipeline

    folder = _diffusers_config_folder(tmp_path / "config")
    path = models_dir / "checkpoints" / CKPT
    pipe = StableDiffusionXLPipeline.from_single_file(
        str(path), config=str(folder), local_files_only=True, torch_dtype=torch.float32
    )
    ours = loader.load_checkpoint(path, "cpu", torch.float32)
    for component in ("unet", "vae", "text_encoder"):
        theirs, mine = getattr(pipe, component).state_dict(), getattr(ours, component).state_dict()
        assert theirs.keys() == mine.keys()
        for key, value in theirs.items():
            assert torch.equal(value, mine[key]), (component, key)


def _diffusers_config_folder(root: Path) -> Path:
    for name, config in tiny_configs().items():
        (root / name).mkdir(parents=True)
        (root / name / "config.json").write_text(json.dumps(config))
    (root / "scheduler").mkdir()
    (root / "scheduler" / "scheduler_config.json").write_text(json.dumps(loader.builtin_config("scheduler")))
    for name in ("tokenizer", "tokenizer_2"):
        (root / name).mkdir()
        for file in ("vocab.json", "merges.txt"):
            (root / name / file).write_bytes((loader.BUILTIN_DIR / "tokenizer" / file).read_bytes())
    index = {
        "_class_name": "StableDiffusionXLPipeline",
        "scheduler": ["diffusers", "EulerDiscreteScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "tokenizer_2": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }
    (root / "model_index.json").write_text(json.dumps(index))
    return root


def test_text_encoder_2_computes_what_open_clip_computes(models_dir: Path) -> None:
    """bigG's fused q/k/v and bare projection matrix, checked against OpenCLIP's math on the raw tensors."""
    path = models_dir / "checkpoints" / CKPT
    raw = {k: v.float() for k, v in load_file(path).items() if k.startswith(keys.CLIP_G_PREFIX)}
    encoder = loader.load_checkpoint(path, "cpu", torch.float32).text_encoder_2
    (ids,) = token_windows("a photo of a cat", "tokenizer_2")
    out = encoder(input_ids=torch.tensor([ids]), output_hidden_states=True)
    penultimate, pooled = _open_clip_text(raw, torch.tensor(ids), heads=encoder.config.num_attention_heads)
    torch.testing.assert_close(out.hidden_states[-2][0], penultimate, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out.text_embeds[0], pooled, atol=1e-4, rtol=1e-4)


def _open_clip_text(raw: dict[str, Any], ids: Any, heads: int) -> tuple[Any, Any]:
    import torch.nn.functional as F

    p = keys.CLIP_G_PREFIX
    x = raw[p + "token_embedding.weight"][ids] + raw[p + "positional_embedding"]
    width, length = x.shape[-1], x.shape[0]
    causal = torch.full((length, length), float("-inf")).triu(1)
    layers = sum(1 for k in raw if k.endswith(".ln_1.weight"))
    hidden = [x]
    for i in range(layers):
        b = f"{p}transformer.resblocks.{i}."
        h = F.layer_norm(x, (width,), raw[b + "ln_1.weight"], raw[b + "ln_1.bias"])[:, None]
        attn, _ = F.multi_head_attention_forward(
            *(h, h, h), width, heads, raw[b + "attn.in_proj_weight"], raw[b + "attn.in_proj_bias"],
            None, None, False, 0.0, raw[b + "attn.out_proj.weight"], raw[b + "attn.out_proj.bias"],
            training=False, need_weights=False, attn_mask=causal,
        )  # fmt: skip
        x = x + attn[:, 0]
        h = F.layer_norm(x, (width,), raw[b + "ln_2.weight"], raw[b + "ln_2.bias"])
        h = F.linear(
            F.gelu(F.linear(h, raw[b + "mlp.c_fc.weight"], raw[b + "mlp.c_fc.bias"])),
            raw[b + "mlp.c_proj.weight"],
        )
        x = x + h + raw[b + "mlp.c_proj.bias"]
        hidden.append(x)
    final = F.layer_norm(x, (width,), raw[p + "ln_final.weight"], raw[p + "ln_final.bias"])
    return hidden[-2], final[int(ids.argmax())] @ raw[p + "text_projection"]


def test_files_without_the_text_model_level_load_the_same(models_dir: Path, tmp_path: Path) -> None:
    tensors = load_file(models_dir / "checkpoints" / CKPT)
    plain = tmp_path / "plain.safetensors"
    save_file(
        {keys.canonical_name(k): v for k, v in tensors.items() if not keys.is_bookkeeping(k)}, str(plain)
    )
    a = loader.load_checkpoint(plain, "cpu", torch.float32).text_encoder.state_dict()
    b = loader.load_checkpoint(
        models_dir / "checkpoints" / CKPT, "cpu", torch.float32
    ).text_encoder.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in b)


def test_a_file_that_is_not_sdxl_is_refused_by_name(
    store: ModelStore, models_dir: Path, ctx: NodeContext
) -> None:
    save_file(
        {"model.diffusion_model.out.2.weight": torch.zeros(4, 8, 3, 3)},
        str(models_dir / "checkpoints" / "x.safetensors"),
    )
    with pytest.raises(InvalidInput, match=r"x\.safetensors is not an SDXL checkpoint"):
        run("CheckpointLoaderSimple", ctx, ckpt_name="x.safetensors")


# --- nodes ---------------------------------------------------------------------------------------------


def test_loader_caches_and_auto_precision_picks_the_cpu_format(models_dir: Path, tmp_path: Path) -> None:
    progress: list[tuple[str, float]] = []
    ctx = make_ctx(ModelStore(models_dir), tmp_path, progress, "auto")
    first = run("CheckpointLoaderSimple", ctx, ckpt_name=CKPT)
    assert [f for _, f in progress] == [0.0, 0.25, 0.5, 0.75]  # one report per component loaded
    again = run("CheckpointLoaderSimple", ctx, ckpt_name=CKPT)
    assert first[0].unet is again[0].unet and len(progress) == 4  # second load is a cache hit
    expected = getattr(torch, choose_precision("cpu", "auto"))
    assert first[0].dtype == expected and next(first[0].unet.parameters()).dtype == expected
    assert first[2].dtype == expected  # the VAE is upcast only from float16


def test_clip_text_encode_gives_sdxl_conditioning(ctx: NodeContext) -> None:
    _, clip, _ = run("CheckpointLoaderSimple", ctx, ckpt_name=CKPT)
    ((cond,),) = run("CLIPTextEncode", ctx, text="a photo of a cat", clip=clip)
    assert cond.embeds.shape == (1, 77, 64) and cond.pooled.shape == (1, 32)  # tiny widths 32 + 32
    # SDXL's size numbers follow the latent the conditioning is used with (ComfyUI's encode_adm)
    assert cond.time_ids(96, 128) == [768.0, 1024.0, 0.0, 0.0, 768.0, 1024.0]
    ((long,),) = run("CLIPTextEncode", ctx, text="cat " * 100, clip=clip)
    assert long.embeds.shape == (1, 154, 64)
    ((other,),) = run("CLIPTextEncode", ctx, text="a photo of a dog", clip=clip)
    assert not torch.equal(cond.embeds, other.embeds)


def test_empty_latent_image(ctx: NodeContext) -> None:
    (latent,) = run("EmptyLatentImage", ctx, width=1024, height=768, batch_size=2)
    assert latent["samples"].shape == (2, 4, 96, 128) and not latent["samples"].any()


def test_lightning_chain_is_deterministic_per_seed(
    ctx: NodeContext, progress: list[tuple[str, float]]
) -> None:
    first = generate(ctx, seed=7)
    assert_image(first, 64)
    assert [f for node, f in progress if node == "KSampler"] == [0.0, 0.25, 0.5, 0.75, 1.0]  # per step
    assert [f for node, f in progress if node == "VAEDecode"] == [0.0, 1.0]  # per image
    np.testing.assert_array_equal(generate(ctx, seed=7), first)
    assert np.abs(generate(ctx, seed=8) - first).mean() > 1e-3


def test_lightning_chain_in_auto_precision_at_1024(store: ModelStore, tmp_path: Path) -> None:
    ctx = make_ctx(store, tmp_path, [], "auto")
    started = time.perf_counter()
    image = generate(ctx, size=1024)
    elapsed = time.perf_counter() - started
    assert_image(image, 1024)
    assert elapsed < 120, f"tiny SDXL at 1024² took {elapsed:.1f}s"


@pytest.mark.parametrize(
    ("sampler", "scheduler"),
    [
        ("euler_ancestral", "karras"),
        ("euler", "normal"),
        ("dpmpp_2m", "karras"),
        ("euler", "simple"),
        ("euler", "exponential"),
    ],
)
def test_other_samplers_and_schedulers_run(ctx: NodeContext, sampler: str, scheduler: str) -> None:
    assert_image(generate(ctx, sampler=sampler, scheduler=scheduler, steps=3), 64)


def test_batch_images_get_their_own_noise(ctx: NodeContext) -> None:
    images = generate(ctx, batch=2)
    assert_image(images, 64, batch=2)
    assert np.abs(images[0] - images[1]).mean() > 1e-3


def test_cfg_one_ignores_the_negative_prompt_and_cfg_above_uses_it(ctx: NodeContext) -> None:
    base = generate(ctx, negative="ugly")
    np.testing.assert_array_equal(generate(ctx, negative="blurry"), base)
    guided = generate(ctx, negative="ugly", cfg=3.0)
    assert np.abs(guided - generate(ctx, negative="blurry", cfg=3.0)).mean() > 1e-4


def test_partial_denoise_runs_the_tail_of_a_longer_schedule(ctx: NodeContext) -> None:
    assert_image(generate(ctx, scheduler="normal", denoise=0.5), 64)


def test_ksampler_refuses_unknown_names(ctx: NodeContext) -> None:
    with pytest.raises(
        InvalidInput, match=r"sampler_name 'dpm_fast' is not supported; choose one of euler, "
    ):
        generate(ctx, sampler="dpm_fast")
    with pytest.raises(InvalidInput, match=r"scheduler 'turbo'.*sgm_uniform"):
        generate(ctx, scheduler="turbo")


def test_cancel_stops_sampling(ctx: NodeContext) -> None:
    ctx.env.cancel.set()
    with pytest.raises(Cancelled):
        generate(ctx)


@needs_flow
def test_the_real_sdxl_lighting_flow_runs_on_the_tiny_checkpoint(models_dir: Path, tmp_path: Path) -> None:
    graph = json.loads(FLOW.read_text())
    graph["16"]["inputs"]["text"] = "a photo of a cat"
    graph["24"]["inputs"]["default_value"] = "4 steps"
    graph["5"]["inputs"].update(width=64, height=64)
    link = models_dir / "checkpoints" / "sdxl_lightning_4step.safetensors"
    link.unlink(missing_ok=True)
    link.symlink_to(models_dir / "checkpoints" / CKPT)
    env = RunEnv(models=ModelStore(models_dir), input_dir=tmp_path, output_dir=tmp_path, tmp_dir=tmp_path)
    outputs = run_graph(graph, env)
    (saved,) = outputs["9"]
    assert saved.is_file() and saved.stat().st_size > 1000


def test_node_module_imports_without_torch() -> None:
    code = (
        "import sys\n"
        "for name in ('torch', 'diffusers', 'transformers', 'safetensors'): sys.modules[name] = None\n"
        "import visionatrix.engine.nodes.sdxl as m\n"
        "import visionatrix.engine.nodes.sampling as s\n"
        "import visionatrix.engine.nodes.conditioning as c\n"
        "import visionatrix.engine.sampling_names as names\n"
        "assert s.KSampler.class_type == 'KSampler' and m.CLIPTextEncode.class_type == 'CLIPTextEncode'\n"
        "assert c.ConditioningCombine.class_type == 'ConditioningCombine'\n"
        "assert 'euler' in names.SAMPLER_NAMES\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
