"""InpaintCrop / InpaintStitch compute what lquesada/ComfyUI-Inpaint-CropAndStitch computes.

``reference/inpaint_crop.json`` holds numbers produced by running the node pack's own classic
nodes (2.1.7, the version Visionatrix pins) beside the project; its ``_derivation`` says how. The
inputs are regenerated here from the same seeds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.unit.flux.conftest import run
from visionatrix.engine.context import NodeContext
from visionatrix.errors import InvalidInput

REFERENCE = json.loads((Path(__file__).parent / "reference" / "inpaint_crop.json").read_text())
CASES = {case["name"]: case for case in REFERENCE["cases"]}


def _inputs(case: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.random.Generator]:
    h, w = case["h"], case["w"]
    img = np.random.default_rng(case["seed"]).random((1, h, w, 3), dtype=np.float32)
    mask = np.zeros((1, h, w), np.float32)
    mask[:, h // 3 : h // 3 + h // 4, w // 2 : w // 2 + w // 5] = 1
    context = None
    if case["context"]:
        context = np.zeros((1, h, w), np.float32)
        context[:, 2:6, 3:9] = 1
    return img, mask, context, np.random.default_rng(case["seed"] + 1)


def _matches(actual: np.ndarray, expected: dict[str, Any]) -> None:
    assert list(actual.shape) == expected["shape"]
    flat = actual.reshape(-1)
    probes = [float(flat[i]) for i in np.linspace(0, flat.size - 1, 12).astype(int)]
    assert probes == pytest.approx(expected["probe"], abs=1e-6)
    assert float(actual.astype(np.float64).sum()) == pytest.approx(expected["sum"], rel=1e-6, abs=1e-4)


@pytest.mark.parametrize("name", sorted(CASES))
def test_crop_and_stitch_match_the_node_pack(ctx: NodeContext, name: str) -> None:
    case = CASES[name]
    img, mask, context, inpainted_rng = _inputs(case)
    stitch, cropped, cropped_mask = run(
        "InpaintCrop", ctx, image=img, mask=mask, optional_context_mask=context, **case["options"]
    )
    expected = case["stitch"]
    assert (stitch["x"][0], stitch["y"][0]) == (expected["x"], expected["y"])
    assert (stitch["rescale_x"][0], stitch["rescale_y"][0]) == pytest.approx(
        (expected["rescale_x"], expected["rescale_y"])
    )
    _matches(cropped, case["cropped_image"])
    _matches(cropped_mask, case["cropped_mask"])
    inpainted = inpainted_rng.random(cropped.shape, dtype=np.float32)
    (stitched,) = run(
        "InpaintStitch",
        ctx,
        stitch=stitch,
        inpainted_image=inpainted,
        rescale_algorithm=case["options"]["rescale_algorithm"],
    )
    _matches(stitched, case["stitched"])


def test_stitching_the_unchanged_crop_gives_back_the_image(ctx: NodeContext) -> None:
    case = CASES["flux_inpaint_defaults"]
    img, mask, _, _ = _inputs(case)
    options = dict(case["options"], mode="free size", rescale_factor=1.0, blur_mask_pixels=0)
    stitch, cropped, _ = run("InpaintCrop", ctx, image=img, mask=mask, **options)
    assert stitch["rescale_x"][0] == 1.0  # no resampling, so the round trip is exact
    (stitched,) = run(
        "InpaintStitch", ctx, stitch=stitch, inpainted_image=cropped, rescale_algorithm="bislerp"
    )
    np.testing.assert_array_equal(stitched, img)


def test_a_tiny_mask_that_would_need_a_gigantic_canvas_is_refused(ctx: NodeContext) -> None:
    img = np.zeros((1, 400, 400, 3), np.float32)
    mask = np.zeros((1, 400, 400), np.float32)
    mask[0, 200, 200] = 1.0  # one pixel, scaled to at least 8192 wide: the whole canvas with it
    options = dict(
        CASES["flux_inpaint_defaults"]["options"], blur_mask_pixels=0, min_width=8192, max_width=8192
    )
    options.update(min_height=8192, max_height=8192)
    with pytest.raises(InvalidInput, match="larger mask"):
        run("InpaintCrop", ctx, image=img, mask=mask, **options)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"mode": "tiny size"}, "mode"),
        ({"padding": 7}, "padding"),
        ({"rescale_algorithm": "magic"}, "rescale_algorithm"),
        ({"min_width": 900, "max_width": 600}, "max_width"),
        ({"blur_mask_pixels": -1}, "blur_mask_pixels"),
    ],
)
def test_bad_options_are_refused_by_name(ctx: NodeContext, change: dict[str, Any], message: str) -> None:
    case = CASES["flux_inpaint_defaults"]
    img, mask, _, _ = _inputs(case)
    with pytest.raises(InvalidInput, match=message):
        run("InpaintCrop", ctx, image=img, mask=mask, **dict(case["options"], **change))


def test_a_mask_of_another_size_is_refused(ctx: NodeContext) -> None:
    img = np.zeros((1, 20, 30, 3), np.float32)
    with pytest.raises(InvalidInput, match="size of the image"):
        run(
            "InpaintCrop",
            ctx,
            image=img,
            mask=np.ones((1, 10, 10), np.float32),
            **CASES["flux_inpaint_defaults"]["options"],
        )
