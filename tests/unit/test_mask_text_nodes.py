"""ImageToMask (ComfyUI), ToBinaryMask (Impact Pack), StringReplace (ComfyUI): their packs' results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from visionatrix.engine.context import NodeContext, RunEnv
from visionatrix.engine.registry import lookup
from visionatrix.errors import InvalidInput
from visionatrix.models.cache import ModelStore


def _run(tmp_path: Path, class_type: str, **inputs: Any) -> Any:
    ctx = NodeContext(RunEnv(ModelStore(tmp_path), tmp_path, tmp_path, tmp_path), "1", class_type)
    cls = lookup(class_type)
    assert cls is not None
    return cls().run(ctx, **inputs)[0]


def test_image_to_mask_takes_one_channel(tmp_path: Path) -> None:
    image = np.random.default_rng(0).random((2, 5, 7, 4), dtype=np.float32)
    for index, channel in enumerate(("red", "green", "blue", "alpha")):
        mask = _run(tmp_path, "ImageToMask", image=image, channel=channel)
        assert mask.shape == (2, 5, 7) and np.array_equal(mask, image[..., index])
    with pytest.raises(InvalidInput, match="3 channels, no alpha"):
        _run(tmp_path, "ImageToMask", image=image[..., :3], channel="alpha")


def test_to_binary_mask_is_one_strictly_above_the_threshold(tmp_path: Path) -> None:
    mask = np.array([[[0.0, 128 / 255, 129 / 255, 1.0]]], dtype=np.float32)
    assert _run(tmp_path, "ToBinaryMask", mask=mask, threshold=128).tolist() == [[[0.0, 0.0, 1.0, 1.0]]]
    assert _run(tmp_path, "ToBinaryMask", mask=mask[0], threshold=1).shape == (1, 1, 4)  # made 3-D
    with pytest.raises(InvalidInput, match="1..255"):
        _run(tmp_path, "ToBinaryMask", mask=mask, threshold=0)


def test_string_replace_replaces_every_occurrence(tmp_path: Path) -> None:
    template = "a {prompt}, then {prompt} again"
    assert _run(tmp_path, "StringReplace", string=template, find="{prompt}", replace="cat") == (
        "a cat, then cat again"
    )
    assert _run(tmp_path, "StringReplace", string="abc", find="", replace="-") == "-a-b-c-"
