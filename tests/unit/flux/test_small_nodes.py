"""MathExpression|pysssss, ImageResize+, ImagePadForOutpaint, DifferentialDiffusion: values worked out from
the node packs' published code by hand, edge cases refused by name."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.unit.flux.conftest import run
from visionatrix.engine.context import NodeContext
from visionatrix.engine.sampling import model_sampling
from visionatrix.errors import InvalidInput


@pytest.mark.parametrize(
    ("expression", "a", "expected"),
    [
        ("1024-a", 64, (960, 960.0)),
        ("a/2", 64, (32, 32.0)),
        ("a/2", 63, (31, 31.5)),  # INT truncates, as int() does
        ("max(a, 10) ** 2 // 3", 4, (33, 33.0)),
        ("iif(a > 2, 7, 9) + round(2.567, 1)", 3, (9, 9.6)),
        ("not a or 0", 0, (1, 1.0)),
    ],
)
def test_math_expression_evaluates_like_the_pack(
    ctx: NodeContext, expression: str, a: int, expected: tuple[int, float]
) -> None:
    got = run("MathExpression|pysssss", ctx, expression=expression, a=a)
    assert got[0] == expected[0] and got[1] == pytest.approx(expected[1])


def test_math_expression_reads_sizes_of_images_and_latents(ctx: NodeContext) -> None:
    image, latent = np.zeros((1, 30, 40, 3), np.float32), {"samples": torch.zeros(1, 16, 5, 6)}
    assert (
        run("MathExpression|pysssss", ctx, expression="a.width + b.height", a=image, b=latent)[0] == 40 + 40
    )


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("__import__('os')", "unknown function"),
        ("a.__class__", "not supported"),
        ("9**9**9", "too large"),
        ("1 << 100000", "too large"),
        ("1/0", "division"),
        ("d + 1", "not found"),
        ("Node.value", "not supported"),
        ("(", "not an expression"),
        ("'text'", "not supported"),
    ],
)
def test_math_expression_runs_nothing_but_arithmetic(ctx: NodeContext, expression: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        run("MathExpression|pysssss", ctx, expression=expression, a=1)


def test_image_resize_keeps_proportion_and_multiple(ctx: NodeContext) -> None:
    image = np.random.default_rng(0).random((1, 300, 200, 3), dtype=np.float32)
    out, w, h = run(
        "ImageResize+",
        ctx,
        image=image,
        width=960,
        height=960,
        interpolation="lanczos",
        method="keep proportion",
        condition="always",
        multiple_of=64,
    )
    # 960/300 = 3.2 -> 960 x 640, already multiples of 64
    assert (w, h) == (640, 960) and out.shape == (1, 960, 640, 3)
    out, w, h = run(
        "ImageResize+",
        ctx,
        image=image,
        width=100,
        height=100,
        interpolation="bilinear",
        method="fill / crop",
        condition="always",
        multiple_of=0,
    )
    assert (w, h) == (100, 100)
    out, w, h = run(
        "ImageResize+",
        ctx,
        image=image,
        width=1000,
        height=1000,
        interpolation="nearest",
        method="stretch",
        condition="downscale if bigger",
        multiple_of=64,
    )
    assert out.shape == (1, 256, 192, 3)  # not resized, then centre-cropped to multiples of 64
    np.testing.assert_array_equal(out, image[:, 22:278, 4:196])


def test_pad_for_outpaint_feathers_like_comfyui(ctx: NodeContext) -> None:
    image = np.ones((1, 10, 12, 3), np.float32)
    padded, mask = run(
        "ImagePadForOutpaint", ctx, image=image, left=2, top=0, right=2, bottom=4, feathering=3
    )
    assert padded.shape == (1, 14, 16, 3) and mask.shape == (1, 14, 16)
    assert padded[0, 0, 0, 0] == 0.5 and padded[0, 5, 5, 0] == 1.0
    assert mask[0, 13, 0] == 1.0 and mask[0, 5, 8] == 0.0
    # column 2 is the image's first column: distance 0 to the padded left side -> (3 - 0) / 3 squared
    assert mask[0, 5, 2] == pytest.approx(1.0) and mask[0, 5, 3] == pytest.approx((2 / 3) ** 2)
    # the top was not padded, so the first row feathers only from the sides
    assert mask[0, 0, 8] == 0.0


def test_differential_diffusion_hardens_the_mask_by_schedule(ctx: NodeContext) -> None:
    from visionatrix.engine.sampling.diffusion_model import DiffusionModel
    from visionatrix.engine.sampling.latent_formats import FLUX

    model = DiffusionModel(None, model_sampling.flux(1.15), FLUX, "cpu", torch.float32)
    (patched,) = run("DifferentialDiffusion", ctx, model=model)
    sigmas = torch.tensor([1.0, 0.75, 0.5, 0.0])
    mask = torch.tensor([0.1, 0.4, 0.6, 0.9])
    # threshold = (t - t_end) / (t_start - t_end) with t = sigma for Flux, t_end = sigma_min
    low = float(model.sampling.sigma_min)
    for sigma, expected in ((1.0, [0, 0, 0, 0]), (0.5, [0, 0, 1, 1]), (0.05, [1, 1, 1, 1])):
        threshold = (sigma - low) / (1.0 - low)
        got = patched.denoise_mask_fn(torch.tensor([sigma]), mask, sigmas)
        assert got.tolist() == [float(m >= threshold) for m in mask.tolist()] == expected
    with pytest.raises(InvalidInput, match="strength"):
        run("DifferentialDiffusion", ctx, model=model, strength=2)
