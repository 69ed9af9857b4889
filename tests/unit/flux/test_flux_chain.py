"""The Flux node chain as the catalog flows wire it, run node by node on the tiny models."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from tests.unit.flux.conftest import CLIP_L, DEV, FILL, KONTEXT, SCHNELL, T5, VAE, run
from visionatrix.engine.context import NodeContext
from visionatrix.engine.nets import flux_text
from visionatrix.engine.nodes.flux import VAE_FOLDER, load_vae
from visionatrix.errors import InvalidInput


def _clip(ctx: NodeContext) -> Any:
    return run("DualCLIPLoader", ctx, clip_name1=T5, clip_name2=CLIP_L, type="flux")[0]


def _sample(
    ctx: NodeContext, model: Any, cond: Any, latent: dict[str, Any], steps: int = 2, seed: int = 7
) -> torch.Tensor:
    (guider,) = run("BasicGuider", ctx, model=model, conditioning=cond)
    (sigmas,) = run("BasicScheduler", ctx, model=model, scheduler="simple", steps=steps, denoise=1.0)
    (sampler,) = run("KSamplerSelect", ctx, sampler_name="euler")
    (noise,) = run("RandomNoise", ctx, noise_seed=seed)
    out, _ = run(
        "SamplerCustomAdvanced",
        ctx,
        noise=noise,
        guider=guider,
        sampler=sampler,
        sigmas=sigmas,
        latent_image=latent,
    )
    return out["samples"]


def test_t5_tokens_are_googles_vocabulary_padded_to_256() -> None:
    pairs = flux_text.t5_tokens("a photo of a cat")
    assert [t for t, _ in pairs[:8]] == [3, 9, 1202, 13, 3, 9, 1712, 1]  # "▁", "a", "▁photo", ..., "</s>"
    assert len(pairs) == 256 and {t for t, _ in pairs[8:]} == {0}
    long = flux_text.t5_tokens("word " * 300)
    assert len(long) == 301 and long[-1] == (1, 1.0)  # never truncated, as ComfyUI
    weighted = flux_text.t5_tokens("a (cat:1.5)")
    assert weighted[:3] == [(3, 1.0), (9, 1.0), (1712, 1.5)]
    # a missing textual-inversion embedding is dropped, as ComfyUI drops it (its word with it)
    assert flux_text.t5_tokens("a cat embedding:nothing") == flux_text.t5_tokens("a cat")


def test_weighted_t5_tokens_move_away_from_the_empty_prompt(ctx: NodeContext) -> None:
    clip = _clip(ctx)
    plain = flux_text.encode_t5(clip.t5, flux_text.t5_tokens("a cat"), lambda: None)
    weighted = flux_text.encode_t5(clip.t5, flux_text.t5_tokens("a (cat:2)"), lambda: None)
    empty = flux_text.encode_t5(clip.t5, [(1, 1.0)] + [(0, 1.0)] * 255, lambda: None)
    torch.testing.assert_close(weighted[0, :2], plain[0, :2])  # weight 1: unchanged
    torch.testing.assert_close(weighted[0, 2], empty[0, 2] + (plain[0, 2] - empty[0, 2]) * 2)


def test_clip_text_encode_flux_equals_clip_text_encode_plus_guidance(ctx: NodeContext) -> None:
    clip = _clip(ctx)
    (a,) = run("CLIPTextEncodeFlux", ctx, clip=clip, clip_l="a cat", t5xxl="a cat", guidance=4.0)
    (b,) = run("CLIPTextEncode", ctx, text="a cat", clip=clip)
    (b,) = run("FluxGuidance", ctx, conditioning=b, guidance=4.0)
    assert a[0].guidance == b[0].guidance == 4.0
    assert torch.equal(a[0].embeds, b[0].embeds) and torch.equal(a[0].pooled, b[0].pooled)
    with pytest.raises(InvalidInput, match="guidance"):
        run("FluxGuidance", ctx, conditioning=b, guidance=-1)


def test_dev_samples_deterministically_and_guidance_matters(ctx: NodeContext) -> None:
    (model,) = run("UNETLoader", ctx, unet_name=DEV, weight_dtype="fp8_e4m3fn")
    (cond,) = run("CLIPTextEncode", ctx, text="a cat", clip=_clip(ctx))
    (latent,) = run("EmptySD3LatentImage", ctx, width=64, height=48, batch_size=2)
    first = _sample(ctx, model, cond, latent)
    assert first.shape == (2, 16, 6, 8) and torch.isfinite(first).all()
    assert torch.equal(first, _sample(ctx, model, cond, latent))
    (strong,) = run("FluxGuidance", ctx, conditioning=cond, guidance=30.0)
    assert not torch.allclose(first, _sample(ctx, model, strong, latent))
    (image,) = run(
        "VAEDecode", ctx, samples={"samples": first}, vae=load_vae(ctx, ctx.models.path(VAE_FOLDER, VAE))
    )
    assert image.shape == (2, 48, 64, 3) and 0.0 <= image.min() and image.max() <= 1.0


def test_schnell_takes_an_sdxl_empty_latent(ctx: NodeContext) -> None:
    (model,) = run("UNETLoader", ctx, unet_name=SCHNELL, weight_dtype="default")
    (sigmas,) = run("BasicScheduler", ctx, model=model, scheduler="simple", steps=4, denoise=1.0)
    assert sigmas.tolist() == [1.0, 0.75, 0.5, 0.25, 0.0]  # schnell: plain flow sigmas
    (cond,) = run("CLIPTextEncode", ctx, text="a cat", clip=_clip(ctx))
    (latent,) = run("EmptyLatentImage", ctx, width=64, height=64, batch_size=1)
    (out,) = run(
        "KSampler",
        ctx,
        model=model,
        seed=1,
        steps=2,
        cfg=1.0,
        sampler_name="euler",
        scheduler="simple",
        positive=cond,
        negative=cond,
        latent_image=latent,
        denoise=1.0,
    )
    assert out["samples"].shape == (1, 16, 8, 8)  # the 4-channel empty latent became Flux's 16
    with pytest.raises(InvalidInput, match="flow models"):
        run(
            "KSampler",
            ctx,
            model=model,
            seed=1,
            steps=2,
            cfg=1.0,
            sampler_name="euler_ancestral",
            scheduler="simple",
            positive=cond,
            negative=cond,
            latent_image=latent,
        )


def test_kontext_edits_with_a_reference_latent(ctx: NodeContext) -> None:
    (model,) = run("UNETLoader", ctx, unet_name=KONTEXT, weight_dtype="default")
    (model,) = run("ModelSamplingFlux", ctx, model=model, max_shift=1.15, base_shift=0.5, width=64, height=48)
    vae = load_vae(ctx, ctx.models.path(VAE_FOLDER, VAE))
    picture = np.random.default_rng(0).random((1, 40, 56, 3), dtype=np.float32)
    (scaled,) = run("FluxKontextImageScale", ctx, image=picture)
    # aspect 56/40 = 1.4: the nearest Kontext resolution is 1184x880 (1.345), not 1248x832 (1.5)
    assert scaled.shape == (1, 880, 1184, 3)
    from visionatrix.engine.nodes.inpaint import encode_pixels

    reference = {"samples": encode_pixels(ctx, vae, torch.from_numpy(picture))}
    (cond,) = run("CLIPTextEncode", ctx, text="make it blue", clip=_clip(ctx))
    (edit,) = run("ReferenceLatent", ctx, conditioning=cond, latent=reference)
    assert len(edit[0].reference_latents) == 1 and cond[0].reference_latents == ()
    (twice,) = run("ReferenceLatent", ctx, conditioning=edit, latent=reference)
    assert len(twice[0].reference_latents) == 2  # appended, as ComfyUI does
    (latent,) = run("EmptySD3LatentImage", ctx, width=64, height=48, batch_size=2)
    with_ref = _sample(ctx, model, edit, latent)
    assert with_ref.shape == (2, 16, 6, 8)
    assert not torch.allclose(with_ref, _sample(ctx, model, cond, latent))
    assert _sample(ctx, model, twice, latent).shape == (2, 16, 6, 8)


def test_fill_inpaints_with_its_extra_channels(ctx: NodeContext) -> None:
    (model,) = run("UNETLoader", ctx, unet_name=FILL, weight_dtype="fp8_e4m3fn")
    (model,) = run("DifferentialDiffusion", ctx, model=model)
    vae = load_vae(ctx, ctx.models.path(VAE_FOLDER, VAE))
    picture = np.random.default_rng(1).random((1, 40, 56, 3), dtype=np.float32)
    (padded, mask) = run(
        "ImagePadForOutpaint", ctx, image=picture, left=8, top=0, right=8, bottom=8, feathering=4
    )
    clip = _clip(ctx)
    (pos,) = run("CLIPTextEncodeFlux", ctx, clip=clip, clip_l="", t5xxl="", guidance=30.0)
    positive, negative, latent = run(
        "InpaintModelConditioning",
        ctx,
        positive=pos,
        negative=pos,
        vae=vae,
        pixels=padded,
        mask=mask,
        noise_mask=False,
    )
    assert "noise_mask" not in latent and positive[0].concat_mask.shape == (1, 1, 48, 72)
    assert latent["samples"].shape == (1, 16, 6, 9)
    (out,) = run(
        "KSampler",
        ctx,
        model=model,
        seed=1,
        steps=2,
        cfg=1.0,
        sampler_name="euler",
        scheduler="normal",
        positive=positive,
        negative=negative,
        latent_image=latent,
        denoise=1.0,
    )
    assert out["samples"].shape == (1, 16, 6, 9) and torch.isfinite(out["samples"]).all()


def test_a_noise_mask_keeps_the_unmasked_latent(ctx: NodeContext) -> None:
    (model,) = run("UNETLoader", ctx, unet_name=DEV, weight_dtype="fp8_e4m3fn")
    vae = load_vae(ctx, ctx.models.path(VAE_FOLDER, VAE))
    picture = np.random.default_rng(2).random((1, 48, 64, 3), dtype=np.float32)
    mask = np.zeros((1, 48, 64), np.float32)
    mask[:, :, 32:] = 1.0
    (cond,) = run("CLIPTextEncode", ctx, text="", clip=_clip(ctx))
    positive, _, latent = run(
        "InpaintModelConditioning",
        ctx,
        positive=cond,
        negative=cond,
        vae=vae,
        pixels=picture,
        mask=mask,
        noise_mask=True,
    )
    out = _sample(ctx, model, positive, latent)
    # the left half of the mask is 0: the result there is the original latent
    torch.testing.assert_close(out[..., :3], latent["samples"][..., :3], rtol=1e-5, atol=1e-5)
    assert not torch.allclose(out[..., 5:], latent["samples"][..., 5:])
