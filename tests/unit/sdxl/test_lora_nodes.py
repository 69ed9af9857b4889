"""LoraLoader / LoraLoaderModelOnly on the tiny lean SDXL checkpoint and a tiny kohya-format LoRA.

Expected weights are computed here from the raw file tensors by ComfyUI's formula
``W + strength · alpha / rank · up @ down`` (float32, then the weight's dtype), each layer found by
its published name in the checkpoint file, not through the engine's key mapping.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from safetensors.torch import load_file, save_file  # noqa: E402

from tests.unit.sdxl.chain import make_ctx, run  # noqa: E402
from visionatrix.engine.context import NodeContext  # noqa: E402
from visionatrix.engine.nets import lora_keys  # noqa: E402
from visionatrix.errors import InvalidInput  # noqa: E402
from visionatrix.models.architecture import file_kind  # noqa: E402
from visionatrix.models.cache import ModelStore  # noqa: E402
from visionatrix.testing.tiny_lora import ALPHA, RANK, write_tiny_sdxl_lora  # noqa: E402
from visionatrix.testing.tiny_sdxl import write_tiny_sdxl_checkpoint  # noqa: E402

pytestmark = pytest.mark.models
CKPT, LORA = "lean.safetensors", "detail.safetensors"
# (kohya name, original tensor in the checkpoint, component, engine parameter)
Q_UNET = "lora_unet_input_blocks_7_1_transformer_blocks_0_attn1_to_q"
LAYERS = [
    (
        Q_UNET,
        "model.diffusion_model.input_blocks.7.1.transformer_blocks.0.attn1.to_q.weight",
        "unet",
        "down_blocks.2.attentions.0.transformer_blocks.0.attn1.to_q.weight",
    ),
    (
        "lora_unet_output_blocks_2_1_proj_out",
        "model.diffusion_model.output_blocks.2.1.proj_out.weight",
        "unet",
        "up_blocks.0.attentions.2.proj_out.weight",
    ),
    (
        "lora_te1_text_model_encoder_layers_3_mlp_fc1",
        "conditioner.embedders.0.transformer.text_model.encoder.layers.3.mlp.fc1.weight",
        "text_encoder",
        "encoder.layers.3.mlp.fc1.weight",
    ),
]


@pytest.fixture(scope="module")
def lora_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lora_models")
    write_tiny_sdxl_checkpoint(root / "checkpoints" / CKPT, seed=1, layout="lean")
    write_tiny_sdxl_lora(root / "loras" / LORA, seed=2)
    return root


@pytest.fixture(scope="module")
def lstore(lora_dir: Path) -> ModelStore:
    return ModelStore(lora_dir)


@pytest.fixture
def lctx(lstore: ModelStore, tmp_path: Path) -> NodeContext:
    return make_ctx(lstore, tmp_path, [], "float32")


def _param(module: Any, key: str) -> Any:
    return dict(module.named_parameters())[key]


def test_the_tiny_lora_is_kohya_sdxl(lora_dir: Path) -> None:
    tensors = load_file(lora_dir / "loras" / LORA)
    assert file_kind(lora_dir / "loras" / LORA) == "sdxl-lora"
    assert tensors[f"{Q_UNET}.lora_down.weight"].shape == (RANK, 16)
    assert float(tensors[f"{Q_UNET}.alpha"]) == ALPHA
    assert {t.dtype for t in tensors.values()} == {torch.float16}


@pytest.mark.parametrize("strength", [1.0, 0.5, -2.0])
def test_patched_weights_follow_comfyuis_formula(lora_dir: Path, lctx: NodeContext, strength: float) -> None:
    model, clip, _ = run("CheckpointLoaderSimple", lctx, ckpt_name=CKPT)
    patched, patched_clip = run(
        "LoraLoader",
        lctx,
        model=model,
        clip=clip,
        lora_name=LORA,
        strength_model=strength,
        strength_clip=strength,
    )
    raw, lora = load_file(lora_dir / "checkpoints" / CKPT), load_file(lora_dir / "loras" / LORA)
    for name, original, component, key in LAYERS:
        up, down = lora[f"{name}.lora_up.weight"].float(), lora[f"{name}.lora_down.weight"].float()
        expected = raw[original].float() + strength * (ALPHA / RANK) * (up @ down)
        owner = patched.unet if component == "unet" else getattr(patched_clip, component)
        torch.testing.assert_close(_param(owner, key), expected.to(torch.float32), rtol=0, atol=0)
    # untouched layers are the loaded model's own tensors, not copies
    assert _param(patched.unet, "conv_in.weight") is _param(model.unet, "conv_in.weight")
    assert not torch.equal(_param(patched.unet, LAYERS[0][3]), _param(model.unet, LAYERS[0][3]))


def test_every_lora_tensor_finds_its_layer(lora_dir: Path, lctx: NodeContext, caplog: Any) -> None:
    model, clip, _ = run("CheckpointLoaderSimple", lctx, ckpt_name=CKPT)
    with caplog.at_level(logging.WARNING):
        run("LoraLoader", lctx, model=model, clip=clip, lora_name=LORA, strength_model=0.7, strength_clip=0.3)
    assert "match no layer" not in caplog.text


def test_other_spellings_of_the_same_lora_give_the_same_model(lora_dir: Path, lctx: NodeContext) -> None:
    """ComfyUI's (``diffusion_model.`` + original name, ``.lora_up``) and diffusers/PEFT's (``unet.`` +
    diffusers name, ``.lora_B``/``.lora_A``) spellings of the kohya file patch the same weights."""
    model, _, _ = run("CheckpointLoaderSimple", lctx, ckpt_name=CKPT)
    kohya = load_file(lora_dir / "loras" / LORA)
    key_map = lora_keys.unet_key_map(dict(model.unet.named_parameters()), dict(model.unet.config))
    by_kohya = {n: t for n, t in key_map.items() if f"{n}.lora_up.weight" in kohya}
    comfy = {t: n for n, t in key_map.items() if n.startswith("diffusion_model.")}
    assert comfy[by_kohya[Q_UNET]] == "diffusion_model.input_blocks.7.1.transformer_blocks.0.attn1.to_q"
    renamed = {}
    for i, (name, target) in enumerate(sorted(by_kohya.items())):
        if i % 2:
            spelling, up, down = (
                "unet." + target.key.removesuffix(".weight"),
                ".lora_B.weight",
                ".lora_A.weight",
            )
        else:
            spelling, up, down = comfy[target], ".lora_up.weight", ".lora_down.weight"
        renamed[spelling + up] = kohya[f"{name}.lora_up.weight"]
        renamed[spelling + down] = kohya[f"{name}.lora_down.weight"]
        renamed[spelling + ".alpha"] = kohya[f"{name}.alpha"]
    assert len(renamed) == 3 * len(by_kohya) > 30
    save_file(renamed, str(lora_dir / "loras" / "renamed.safetensors"))
    try:
        (first,) = run("LoraLoaderModelOnly", lctx, model=model, lora_name=LORA, strength_model=0.8)
        (second,) = run(
            "LoraLoaderModelOnly", lctx, model=model, lora_name="renamed.safetensors", strength_model=0.8
        )
        for key, value in first.unet.state_dict().items():
            assert torch.equal(value, second.unet.state_dict()[key]), key
    finally:
        (lora_dir / "loras" / "renamed.safetensors").unlink()


def test_strength_zero_is_no_lora_and_the_cached_checkpoint_stays_as_loaded(
    lora_dir: Path, lctx: NodeContext
) -> None:
    model, clip, _ = run("CheckpointLoaderSimple", lctx, ckpt_name=CKPT)
    before = {k: v.clone() for k, v in model.unet.state_dict().items()}
    same_model, same_clip = run(
        "LoraLoader", lctx, model=model, clip=clip, lora_name=LORA, strength_model=0, strength_clip=0
    )
    assert same_model is model and same_clip is clip
    patched, _ = run(
        "LoraLoader", lctx, model=model, clip=clip, lora_name=LORA, strength_model=1.0, strength_clip=0
    )
    again, _ = run(
        "LoraLoader", lctx, model=model, clip=clip, lora_name=LORA, strength_model=1.0, strength_clip=0
    )
    assert again.unet is patched.unet, "the patched copy comes from the model cache"
    reloaded, _, _ = run("CheckpointLoaderSimple", lctx, ckpt_name=CKPT)
    for key, value in reloaded.unet.state_dict().items():
        assert torch.equal(value, before[key]), key
    (model_only,) = run("LoraLoaderModelOnly", lctx, model=model, lora_name=LORA, strength_model=1.0)
    assert model_only.unet is patched.unet


def test_a_lora_changes_the_image(lora_dir: Path, lctx: NodeContext) -> None:
    model, clip, vae = run("CheckpointLoaderSimple", lctx, ckpt_name=CKPT)
    patched, patched_clip = run(
        "LoraLoader", lctx, model=model, clip=clip, lora_name=LORA, strength_model=1, strength_clip=1
    )

    def image(m: Any, c: Any) -> Any:
        ((positive,),) = run("CLIPTextEncode", lctx, text="a cat", clip=c)
        (latent,) = run("EmptyLatentImage", lctx, width=64, height=64, batch_size=1)
        sampling = {"seed": 3, "steps": 2, "cfg": 1.0, "sampler_name": "euler", "scheduler": "normal"}
        cond = {"positive": (positive,), "negative": (positive,), "latent_image": latent, "denoise": 1.0}
        (out,) = run("KSampler", lctx, model=m, **sampling, **cond)
        return run("VAEDecode", lctx, samples=out, vae=vae)[0]

    plain, with_lora = image(model, clip), image(patched, patched_clip)
    assert plain.shape == with_lora.shape and abs(plain - with_lora).max() > 1e-3


def test_bad_loras_are_refused_by_name(lora_dir: Path, lctx: NodeContext) -> None:
    model, clip, _ = run("CheckpointLoaderSimple", lctx, ckpt_name=CKPT)
    folder = lora_dir / "loras"
    save_file(
        {
            "lora_unet_input_blocks_7_1_proj_in.hada_w1_a": torch.zeros(2, 2),
            "lora_te2_x.lora_up.weight": torch.zeros(1),
        },
        str(folder / "loha.safetensors"),
    )
    save_file(
        {"lora_unet_input_blocks_7_1_proj_in.lora_up.weight": torch.zeros(16, 4)},
        str(folder / "half.safetensors"),
    )
    sd1 = {
        "model.diffusion_model.input_blocks.0.0.weight": torch.zeros(1),
        "cond_stage_model.transformer.x": torch.zeros(1),
    }
    save_file(sd1, str(folder / "sd1.safetensors"))
    try:
        with pytest.raises(InvalidInput, match=r"hada_w1_a .*LyCORIS"):
            run(
                "LoraLoader",
                lctx,
                model=model,
                clip=clip,
                lora_name="loha.safetensors",
                strength_model=1,
                strength_clip=1,
            )
        with pytest.raises(InvalidInput, match=r"proj_in.lora_up.weight has no matching .*lora_down.weight"):
            run(
                "LoraLoader",
                lctx,
                model=model,
                clip=clip,
                lora_name="half.safetensors",
                strength_model=1,
                strength_clip=1,
            )
        with pytest.raises(
            InvalidInput, match=r"LoRA: sd1.safetensors is Stable Diffusion 1.x; this node loads SDXL LoRA"
        ):
            run(
                "LoraLoader",
                lctx,
                model=model,
                clip=clip,
                lora_name="sd1.safetensors",
                strength_model=1,
                strength_clip=1,
            )
        with pytest.raises(InvalidInput, match=r"strength_model must be within -100..100"):
            run("LoraLoaderModelOnly", lctx, model=model, lora_name=LORA, strength_model=101)
    finally:
        for name in ("loha", "half", "sd1"):
            (folder / f"{name}.safetensors").unlink()


def test_kohya_names_map_to_the_layers_diffusers_own_converter_names(
    lora_dir: Path, lctx: NodeContext
) -> None:
    """diffusers converts kohya's original-layout names itself (``lora_state_dict``): every update lands
    on the layer it names there, with the same tensors."""
    from types import SimpleNamespace

    from diffusers import StableDiffusionXLPipeline

    from visionatrix.engine.nets import lora as lora_net

    model, clip, _ = run("CheckpointLoaderSimple", lctx, ckpt_name=CKPT)
    config = dict(model.unet.config)
    theirs, alphas = StableDiffusionXLPipeline.lora_state_dict(
        str(lora_dir / "loras" / LORA), unet_config=SimpleNamespace(**config)
    )
    key_map = lora_keys.unet_key_map(dict(model.unet.named_parameters()), config)
    for component in ("text_encoder", "text_encoder_2"):
        key_map.update(lora_keys.clip_key_map(component, dict(getattr(clip, component).named_parameters())))
    ours = lora_net.match(lora_net.read_lora(lora_dir / "loras" / LORA), key_map)
    assert len(ours) * 2 == len(theirs) > 60
    for target, update in ours.items():
        layer = target.key.removesuffix(".weight").removeprefix("text_model.")
        if target.component == "unet":
            # diffusers names attention layers in its attention-processor form
            processor = layer.replace(".to_", ".processor.to_").replace(".to_out.0", ".to_out")
            down = f"unet.{layer}.lora.down.weight"
            down = down if down in theirs else f"unet.{processor}_lora.down.weight"
        elif ".self_attn." in layer:  # and its old names for the text encoders' attention
            old = re.sub(r"self_attn\.(\w+)_proj$", r"self_attn.to_\1_lora", layer)
            down = f"{target.component}.text_model.{old}.down.weight"
        else:
            down = f"{target.component}.text_model.{layer}.lora_linear_layer.down.weight"
        assert torch.equal(theirs[down], update.down), down
        assert torch.equal(theirs[down.replace(".down.", ".up.")], update.up), down
        assert update.alpha == ALPHA
    assert len(alphas) == len(ours) and set(alphas.values()) == {ALPHA}
