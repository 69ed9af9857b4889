"""Pixel operations without models, with ComfyUI's input names: scale, crop, invert, batch.

Resampling uses Pillow on float32 channels (mode "F"), so nothing is lost to 8-bit rounding
between nodes; filters that overshoot (bicubic, lanczos) are clipped back to [0, 1].
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from PIL import Image

from visionatrix.engine.context import NodeContext
from visionatrix.engine.nodes.image_io import as_image_batch
from visionatrix.engine.registry import node
from visionatrix.errors import InvalidInput

# ComfyUI's upscale_method names -> Pillow filters. Pillow's box filter averages the covered
# area (torch "area"); its nearest filter samples pixel centres (torch "nearest-exact").
FILTERS = {
    "nearest-exact": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "area": Image.Resampling.BOX,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}
CROPS = ("disabled", "center")
MAX_SIDE = 16384  # ComfyUI's MAX_RESOLUTION


def _filter(method: str) -> Image.Resampling:
    if method not in FILTERS:
        raise InvalidInput(f"upscale_method {method!r} is not one of {list(FILTERS)}")
    return FILTERS[method]


def _size(value: Any, name: str, allow_zero: bool = False) -> int:
    low = 0 if allow_zero else 1
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not number.is_integer() or not low <= number <= MAX_SIDE:
        raise InvalidInput(f"'{name}' must be a whole number from {low} to {MAX_SIDE}, got {value!r}")
    return int(number)


def resize(images: np.ndarray, width: int, height: int, method: str) -> np.ndarray:
    """Every image of the (B, H, W, C) batch resized to (height, width)."""
    resample = _filter(method)
    if images.shape[1:3] == (height, width):
        return images.copy()
    out = np.empty((images.shape[0], height, width, images.shape[3]), dtype=np.float32)
    for b, image in enumerate(images):
        for c in range(image.shape[-1]):
            plane = Image.fromarray(np.ascontiguousarray(image[..., c]))
            out[b, ..., c] = np.asarray(plane.resize((width, height), resample), dtype=np.float32)
    return np.clip(out, 0.0, 1.0)


def center_crop(images: np.ndarray, width: int, height: int) -> np.ndarray:
    """The centred part of each image with the aspect ratio of ``width`` x ``height``."""
    old_h, old_w = images.shape[1:3]
    old_aspect, new_aspect = old_w / old_h, width / height
    x = y = 0
    if old_aspect > new_aspect:
        x = round((old_w - old_w * (new_aspect / old_aspect)) / 2)
    elif old_aspect < new_aspect:
        y = round((old_h - old_h * (old_aspect / new_aspect)) / 2)
    return images[:, y : old_h - y, x : old_w - x]


@node("ImageScale")
class ImageScale:
    """Scales to width x height; a 0 side follows the aspect ratio; ``center`` crops to fit first."""

    def run(
        self,
        ctx: NodeContext,
        image: Any,
        upscale_method: str = "nearest-exact",
        width: Any = 512,
        height: Any = 512,
        crop: str = "disabled",
        **_: Any,
    ) -> tuple[np.ndarray]:
        batch = as_image_batch(image)
        width, height = _size(width, "width", True), _size(height, "height", True)
        if crop not in CROPS:
            raise InvalidInput(f"crop {crop!r} is not one of {list(CROPS)}")
        if width == 0 and height == 0:
            return (batch,)
        old_h, old_w = batch.shape[1:3]
        width = width or max(1, round(old_w * height / old_h))
        height = height or max(1, round(old_h * width / old_w))
        if crop == "center":
            batch = center_crop(batch, width, height)
        return (resize(batch, width, height, upscale_method),)


@node("ImageScaleBy")
class ImageScaleBy:
    def run(
        self, ctx: NodeContext, image: Any, upscale_method: str, scale_by: Any, **_: Any
    ) -> tuple[np.ndarray]:
        batch = as_image_batch(image)
        factor = float(scale_by)
        if not factor > 0:
            raise InvalidInput(f"'scale_by' must be above 0, got {scale_by!r}")
        old_h, old_w = batch.shape[1:3]
        width, height = max(1, round(old_w * factor)), max(1, round(old_h * factor))
        return (resize(batch, _size(width, "width"), _size(height, "height"), upscale_method),)


@node("ImageScaleToTotalPixels")
class ImageScaleToTotalPixels:
    """Scales to about ``megapixels`` x 1024 x 1024 pixels, keeping the aspect ratio."""

    def run(
        self,
        ctx: NodeContext,
        image: Any,
        upscale_method: str,
        megapixels: Any = 1.0,
        resolution_steps: Any = 1,
        **_: Any,
    ) -> tuple[np.ndarray]:
        batch = as_image_batch(image)
        total, step = float(megapixels) * 1024 * 1024, _size(resolution_steps, "resolution_steps")
        if not total > 0:
            raise InvalidInput(f"'megapixels' must be above 0, got {megapixels!r}")
        old_h, old_w = batch.shape[1:3]
        factor = math.sqrt(total / (old_w * old_h))
        width = max(step, round(old_w * factor / step) * step)
        height = max(step, round(old_h * factor / step) * step)
        return (resize(batch, _size(width, "width"), _size(height, "height"), upscale_method),)


@node("ImageCrop")
class ImageCrop:
    """The ``width`` x ``height`` region at (x, y), cut short at the image's edges."""

    def run(
        self, ctx: NodeContext, image: Any, width: Any, height: Any, x: Any = 0, y: Any = 0, **_: Any
    ) -> tuple[np.ndarray]:
        batch = as_image_batch(image)
        old_h, old_w = batch.shape[1:3]
        left = min(_size(x, "x", True), old_w - 1)
        top = min(_size(y, "y", True), old_h - 1)
        right, bottom = left + _size(width, "width"), top + _size(height, "height")
        return (batch[:, top:bottom, left:right].copy(),)


@node("ImageInvert")
class ImageInvert:
    def run(self, ctx: NodeContext, image: Any, **_: Any) -> tuple[np.ndarray]:
        return (1.0 - as_image_batch(image),)


@node("ImageBatch")
class ImageBatch:
    """``image2`` appended to ``image1``; resized (bilinear, centre crop) to match it if needed."""

    def run(self, ctx: NodeContext, image1: Any, image2: Any, **_: Any) -> tuple[np.ndarray]:
        first, second = as_image_batch(image1, "image1"), as_image_batch(image2, "image2")
        if first.shape[-1] != second.shape[-1]:
            raise InvalidInput(f"image1 has {first.shape[-1]} channels but image2 has {second.shape[-1]}")
        height, width = first.shape[1:3]
        if second.shape[1:3] != (height, width):
            second = resize(center_crop(second, width, height), width, height, "bilinear")
        return (np.concatenate([first, second]),)
