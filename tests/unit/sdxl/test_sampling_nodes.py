"""Sampling, conditioning and text nodes on the tiny SDXL and Playground v2.5 checkpoints.

Where ComfyUI offers two ways to the same computation (KSampler vs SamplerCustom vs
SamplerCustomAdvanced, one KSampler vs two KSamplerAdvanced halves) they must agree; prompt
weights must follow ComfyUI's blending formula exactly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from tests.unit.sdxl.chain import CKPT, PLAYGROUND, assert_image, generate, run  # noqa: E402
from visionatrix.engine.context import NodeContext  # noqa: E402
from visionatrix.engine.nets.sdxl_text import token_windows  # noqa: E402
from visionatrix.engine.sampling_names import SAMPLER_NAMES  # noqa: E402
from visionatrix.errors import Cancelled, InvalidInput  # noqa: E402

pytestmark = pytest.mark.models


def _encode(ctx: NodeContext, text: str, clip: Any) -> Any:
    ((part,),) = run("CLIPTextEncode", ctx, text=text, clip=clip)
    return part


def test_prompt_weights_blend_each_weighted_token_with_the_empty_prompt(ctx: NodeContext) -> None:
    _, clip, _ = run("CheckpointLoaderSimple", ctx, ckpt_name=CKPT)
    plain, weighted = _encode(ctx, "a photo of a cat", clip), _encode(ctx, "a photo of a (cat:1.5)", clip)
    empty = _encode(ctx, "", clip)  # the same tokens ComfyUI encodes as "the empty prompt"
    assert token_windows("a photo of a (cat:1.5)", "tokenizer") == token_windows(
        "a photo of a cat", "tokenizer"
    )
    cat = 5  # <start> a photo of a cat
    expected = empty.embeds[0, cat] + (plain.embeds[0, cat] - empty.embeds[0, cat]) * 1.5
    torch.testing.assert_close(weighted.embeds[0, cat], expected, rtol=1e-5, atol=1e-5)
    others = [i for i in range(77) if i != cat]
    assert torch.equal(weighted.embeds[0, others], plain.embeds[0, others])
    assert torch.equal(weighted.pooled, plain.pooled)
    assert torch.equal(_encode(ctx, "a photo of a (cat:1.0)", clip).embeds, plain.embeds)


def test_prompt_refusals_name_the_problem(ctx: NodeContext) -> None:
    _, clip, _ = run("CheckpointLoaderSimple", ctx, ckpt_name=CKPT)
    with pytest.raises(InvalidInput, match="not a finite number"):
        _encode(ctx, "a (cat:inf)", clip)


JUGGERNAUT_NEGATIVE = (
    "embedding:ng_deepnegative_v1_75t, embedding:negative_hand-neg,  (worst quality:2), lowres"
)


@pytest.mark.parametrize(
    ("prompt", "as_comfyui_reads_it"),
    [
        # the embedding word is split off at " embedding:" and, with no such file, dropped
        ("a cat, embedding:easynegative", "a cat,"),
        ("a cat\nembedding:easynegative big", "a cat"),
        # a missing "name," is retried as "name" and its "," tokenized; "name,  " is not retried
        (JUGGERNAUT_NEGATIVE, ", (worst quality:2), lowres"),
    ],
)
def test_missing_embeddings_are_ignored_as_comfyui_ignores_them(
    ctx: NodeContext, prompt: str, as_comfyui_reads_it: str
) -> None:
    for tokenizer_name in ("tokenizer", "tokenizer_2"):
        assert token_windows(prompt, tokenizer_name) == token_windows(as_comfyui_reads_it, tokenizer_name)
    _, clip, _ = run("CheckpointLoaderSimple", ctx, ckpt_name=CKPT)
    assert torch.equal(_encode(ctx, prompt, clip).embeds, _encode(ctx, as_comfyui_reads_it, clip).embeds)


def test_an_embedding_file_that_exists_is_refused_by_name(ctx: NodeContext) -> None:
    folder = ctx.models.path("checkpoints", CKPT).parents[1] / "embeddings"
    folder.mkdir(exist_ok=True)
    (folder / "easynegative.safetensors").write_bytes(b"")
    _, clip, _ = run("CheckpointLoaderSimple", ctx, ckpt_name=CKPT)
    try:
        with pytest.raises(
            InvalidInput, match=r"embedding:easynegative \(easynegative.safetensors\).*not supported"
        ):
            _encode(ctx, "a cat, embedding:easynegative,", clip)
        _encode(ctx, "a cat, embedding:../checkpoints/" + CKPT, clip)  # outside the folder: no file
    finally:
        (folder / "easynegative.safetensors").unlink()


def test_prompt_encoding_stops_on_cancel(ctx: NodeContext) -> None:
    _, clip, _ = run("CheckpointLoaderSimple", ctx, ckpt_name=CKPT)
    ctx.env.cancel.set()
    with pytest.raises(Cancelled):
        _encode(ctx, "word " * 5000, clip)


def test_clip_set_last_layer(ctx: NodeContext) -> None:
    _, clip, _ = run("CheckpointLoaderSimple", ctx, ckpt_name=CKPT)
    default = _encode(ctx, "a cat", clip)
    (penultimate,) = run("CLIPSetLastLayer", ctx, clip=clip, stop_at_clip_layer=-2)
    assert torch.equal(_encode(ctx, "a cat", penultimate).embeds, default.embeds)
    (last,) = run("CLIPSetLastLayer", ctx, clip=clip, stop_at_clip_layer=-1)
    other = _encode(ctx, "a cat", last)
    assert not torch.equal(other.embeds, default.embeds) and torch.equal(other.pooled, default.pooled)
    with pytest.raises(InvalidInput, match="stop_at_clip_layer"):
        run("CLIPSetLastLayer", ctx, clip=clip, stop_at_clip_layer=0)


def _inputs(ctx: NodeContext, ckpt: str = CKPT, size: int = 64) -> dict[str, Any]:
    model, clip, vae = run("CheckpointLoaderSimple", ctx, ckpt_name=ckpt)
    (latent,) = run("EmptyLatentImage", ctx, width=size, height=size, batch_size=1)
    return {
        "model": model,
        "vae": vae,
        "clip": clip,
        "positive": (_encode(ctx, "a photo of a cat", clip),),
        "negative": (_encode(ctx, "blurry", clip),),
        "latent": latent,
    }


def _ksampler(ctx: NodeContext, io: dict[str, Any], **settings: Any) -> Any:
    args = {"seed": 3, "steps": 4, "cfg": 2.5, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0}
    args.update(settings)
    (out,) = run(
        "KSampler", ctx, model=io["model"], positive=io["positive"], negative=io["negative"],
        latent_image=io["latent"], **args,
    )  # fmt: skip
    return out["samples"]


def test_custom_sampling_nodes_equal_ksampler(ctx: NodeContext) -> None:
    io = _inputs(ctx)
    expected = _ksampler(ctx, io, sampler_name="dpmpp_2m", scheduler="karras")
    (sampler,) = run("KSamplerSelect", ctx, sampler_name="dpmpp_2m")
    (sigmas,) = run("BasicScheduler", ctx, model=io["model"], scheduler="karras", steps=4, denoise=1.0)
    out, denoised = run(
        "SamplerCustom", ctx, model=io["model"], add_noise=True, noise_seed=3, cfg=2.5,
        positive=io["positive"], negative=io["negative"], sampler=sampler, sigmas=sigmas,
        latent_image=io["latent"],
    )  # fmt: skip
    assert torch.equal(out["samples"], expected)
    assert denoised["samples"].shape == expected.shape  # the last step's x0 prediction
    (noise,) = run("RandomNoise", ctx, noise_seed=3)
    (guider,) = run(
        "CFGGuider", ctx, model=io["model"], positive=io["positive"], negative=io["negative"], cfg=2.5
    )
    advanced, _ = run(
        "SamplerCustomAdvanced", ctx, noise=noise, guider=guider, sampler=sampler, sigmas=sigmas,
        latent_image=io["latent"],
    )  # fmt: skip
    assert torch.equal(advanced["samples"], expected)
    (basic,) = run("BasicGuider", ctx, model=io["model"], conditioning=io["positive"])
    cfg_one = _ksampler(ctx, io, sampler_name="dpmpp_2m", scheduler="karras", cfg=1.0)
    guided, _ = run(
        "SamplerCustomAdvanced", ctx, noise=noise, guider=basic, sampler=sampler, sigmas=sigmas,
        latent_image=io["latent"],
    )  # fmt: skip
    assert torch.equal(guided["samples"], cfg_one)


def test_two_ksampler_advanced_halves_equal_one_run(ctx: NodeContext) -> None:
    io = _inputs(ctx)
    expected = _ksampler(ctx, io)
    common = {
        "model": io["model"], "noise_seed": 3, "steps": 4, "cfg": 2.5, "sampler_name": "euler",
        "scheduler": "normal", "positive": io["positive"], "negative": io["negative"],
    }  # fmt: skip
    (full,) = run("KSamplerAdvanced", ctx, add_noise="enable", latent_image=io["latent"], **common)
    assert torch.equal(full["samples"], expected)
    (first,) = run(
        "KSamplerAdvanced", ctx, add_noise="enable", latent_image=io["latent"], start_at_step=0,
        end_at_step=2, return_with_leftover_noise="enable", **common,
    )  # fmt: skip
    (second,) = run(
        "KSamplerAdvanced", ctx, add_noise="disable", latent_image=first, start_at_step=2,
        end_at_step=10000, return_with_leftover_noise="disable", **common,
    )  # fmt: skip
    torch.testing.assert_close(second["samples"], expected, rtol=1e-4, atol=1e-4)


def test_conditioning_nodes(ctx: NodeContext) -> None:
    io = _inputs(ctx)
    base = _ksampler(ctx, io)
    (both,) = run("ConditioningCombine", ctx, conditioning_1=io["positive"], conditioning_2=io["positive"])
    assert torch.equal(_ksampler(ctx, {**io, "positive": both}), base)  # the mean of two equal predictions
    (zero,) = run("ConditioningZeroOut", ctx, conditioning=io["negative"])
    assert not zero[0].embeds.any() and not zero[0].pooled.any()
    assert not torch.equal(_ksampler(ctx, {**io, "negative": zero}), base)
    (early,) = run("ConditioningSetTimestepRange", ctx, conditioning=io["positive"], start=0.0, end=0.5)
    (late,) = run("ConditioningSetTimestepRange", ctx, conditioning=io["negative"], start=0.5, end=1.0)
    (mixed,) = run("ConditioningCombine", ctx, conditioning_1=early, conditioning_2=late)
    assert (mixed[0].start_percent, mixed[0].end_percent, mixed[1].start_percent) == (0.0, 0.5, 0.5)
    switched = _ksampler(ctx, {**io, "positive": mixed})
    assert torch.isfinite(switched).all() and not torch.equal(switched, base)
    with pytest.raises(InvalidInput, match="end must be in"):
        run("ConditioningSetTimestepRange", ctx, conditioning=io["positive"], start=0.0, end=1.5)


@pytest.mark.parametrize("sampler", SAMPLER_NAMES)
def test_every_sampler_makes_an_image(ctx: NodeContext, sampler: str) -> None:
    assert_image(generate(ctx, sampler=sampler, scheduler="karras", steps=3, cfg=2.0), 64)


def test_align_your_steps_with_sampler_custom(ctx: NodeContext) -> None:
    io = _inputs(ctx)
    (sigmas,) = run("AlignYourStepsScheduler", ctx, model_type="SDXL", steps=5, denoise=1.0)
    assert sigmas.shape == (6,) and float(sigmas[-1]) == 0.0
    (sampler,) = run("KSamplerSelect", ctx, sampler_name="euler_ancestral")
    out, _ = run(
        "SamplerCustom", ctx, model=io["model"], add_noise=True, noise_seed=1, cfg=3.0,
        positive=io["positive"], negative=io["negative"], sampler=sampler, sigmas=sigmas,
        latent_image=io["latent"],
    )  # fmt: skip
    (image,) = run("VAEDecode", ctx, samples=out, vae=io["vae"])
    assert_image(image, 64)


def test_playground_checkpoint_samples_on_edm_sigmas_in_its_latent_format(ctx: NodeContext) -> None:
    io = _inputs(ctx, PLAYGROUND)
    model = io["model"]
    assert model.sampling.prediction == "edm" and model.sampling.sigma_data == 0.5
    assert float(model.sampling.sigma_max) == pytest.approx(80.0, rel=1e-5)
    assert model.latent_format.name == "SDXL_Playground_2_5"
    (patched,) = run(
        "ModelSamplingContinuousEDM",
        ctx,
        model=model,
        sampling="edm_playground_v2.5",
        sigma_max=120,
        sigma_min=0.002,
    )
    assert (
        float(patched.sampling.sigma_max) == pytest.approx(120.0, rel=1e-5) and model.sampling.sigma_max < 81
    )
    (sigmas,) = run("BasicScheduler", ctx, model=patched, scheduler="karras", steps=3, denoise=1.0)
    assert float(sigmas[0]) == pytest.approx(120.0, rel=1e-5)
    samples = _ksampler(ctx, {**io, "model": patched}, sampler_name="dpmpp_2m_sde", scheduler="karras")
    (image,) = run("VAEDecode", ctx, samples={"samples": samples}, vae=io["vae"])
    assert_image(image, 64)
    with pytest.raises(InvalidInput, match="sampling 'cosmos_rflow' is not supported"):
        run("ModelSamplingContinuousEDM", ctx, model=model, sampling="cosmos_rflow")


def test_sampling_inputs_are_checked(ctx: NodeContext) -> None:
    io = _inputs(ctx)
    with pytest.raises(InvalidInput, match="seed must be in"):
        _ksampler(ctx, io, seed=-1)
    with pytest.raises(InvalidInput, match="AlignYourStepsScheduler: model_type 'SD3'"):
        run("AlignYourStepsScheduler", ctx, model_type="SD3", steps=10)
    with pytest.raises(InvalidInput, match="KSamplerSelect: sampler_name 'dpm_adaptive'"):
        run("KSamplerSelect", ctx, sampler_name="dpm_adaptive")
    assert np.array_equal(
        _ksampler(ctx, io, denoise=0.0), io["latent"]["samples"]
    )  # denoise 0 returns the latent unchanged
