"""ImageResize+ (cubiq/ComfyUI_essentials): resize with a method, a condition and a multiple.

    ImageResize+(image, width, height, interpolation, method, condition, multiple_of)
        -> (IMAGE, width, height)

Methods: ``stretch``; ``keep proportion`` (fit inside width x height; a 0 side is unbounded);
``fill / crop`` (cover, then centre-crop); ``pad`` (fit, then pad with black). Conditions: always,
downscale if bigger, upscale if smaller, if bigger area, if smaller area. ``multiple_of`` first
rounds the target down and finally centre-crops the result to that multiple. Interpolation as the
pack does it: torch's ``interpolate`` modes, and ``lanczos`` through 8-bit Pillow images (ComfyUI's
``comfy.utils.lanczos``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from visionatrix.engine.context import NodeContext
from visionatrix.engine.nodes.image_io import as_image_batch
from visionatrix.engine.registry import node
from visionatrix.errors import InvalidInput

MAX_RESOLUTION = 16384
INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "area", "nearest-exact", "lanczos")
METHODS = ("stretch", "keep proportion", "fill / crop", "pad")
CONDITIONS = ("always", "downscale if bigger", "upscale if smaller", "if bigger area", "if smaller area")


def _lanczos(images: np.ndarray, width: int, height: int) -> np.ndarray:
    from PIL import Image

    out = []
    for image in images:
        pixels = np.clip(255.0 * image, 0, 255).astype(np.uint8)  # truncated, as ComfyUI's lanczos
        pil = Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)
        resized = (
            np.asarray(pil.resize((width, height), resample=Image.Resampling.LANCZOS), dtype=np.float32)
            / 255.0
        )
        out.append(resized[..., None] if resized.ndim == 2 else resized)
    return np.stack(out)


def _interpolate(images: np.ndarray, width: int, height: int, mode: str) -> np.ndarray:
    if mode == "lanczos":
        return _lanczos(images, width, height)
    import torch

    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)
    return torch.nn.functional.interpolate(x, size=(height, width), mode=mode).permute(0, 2, 3, 1).numpy()


def _target(
    oh: int, ow: int, width: int, height: int, method: str
) -> tuple[int, int, tuple[int, ...], tuple[int, ...]]:
    """(width, height, pad (left, right, top, bottom), crop (x, y, x2, y2)) of the pack's plan."""
    pad: tuple[int, ...] = (0, 0, 0, 0)
    crop: tuple[int, ...] = (0, 0, 0, 0)
    if method in ("keep proportion", "pad"):
        if width == 0:
            width = MAX_RESOLUTION if oh < height else ow
        if height == 0:
            height = MAX_RESOLUTION if ow < width else oh
        ratio = min(width / ow, height / oh)
        new_w, new_h = round(ow * ratio), round(oh * ratio)
        if method == "pad":
            left, top = (width - new_w) // 2, (height - new_h) // 2
            pad = (left, width - new_w - left, top, height - new_h - top)
        return new_w, new_h, pad, crop
    if method == "fill / crop":
        width, height = width or ow, height or oh
        ratio = max(width / ow, height / oh)
        new_w, new_h = round(ow * ratio), round(oh * ratio)
        x, y = (new_w - width) // 2, (new_h - height) // 2
        x2, y2 = x + width, y + height
        x = max(x - max(x2 - new_w, 0), 0)
        y = max(y - max(y2 - new_h, 0), 0)
        return new_w, new_h, pad, (x, y, x2, y2)
    return width or ow, height or oh, pad, crop


def _applies(condition: str, oh: int, ow: int, height: int, width: int) -> bool:
    return (
        condition == "always"
        or (condition == "downscale if bigger" and (oh > height or ow > width))
        or (condition == "upscale if smaller" and (oh < height or ow < width))
        or (condition == "if bigger area" and oh * ow > height * width)
        or (condition == "if smaller area" and oh * ow < height * width)
    )


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise InvalidInput(f"ImageResize+: {name} {value!r} is not one of {list(allowed)}")
    return str(value)


@node("ImageResize+")
class ImageResizePlus:
    def run(
        self,
        ctx: NodeContext,
        image: Any,
        width: Any = 512,
        height: Any = 512,
        interpolation: str = "nearest",
        method: str = "stretch",
        condition: str = "always",
        multiple_of: Any = 0,
        **_: Any,
    ) -> tuple[np.ndarray, int, int]:
        batch = as_image_batch(image)
        interpolation = _choice("interpolation", interpolation, INTERPOLATIONS)
        method, condition = _choice("method", method, METHODS), _choice("condition", condition, CONDITIONS)
        width, height, multiple = int(width), int(height), int(multiple_of)
        if not (0 <= width <= MAX_RESOLUTION and 0 <= height <= MAX_RESOLUTION and 0 <= multiple <= 512):
            raise InvalidInput(
                f"ImageResize+: width/height must be in 0..{MAX_RESOLUTION}, multiple_of in 0..512"
            )
        _, oh, ow, _ = batch.shape
        if multiple > 1:
            width, height = width - width % multiple, height - height % multiple
        width, height, pad, crop = _target(oh, ow, width, height, method)
        if width < 1 or height < 1:
            raise InvalidInput(f"ImageResize+: the result would be {width}x{height}")
        out = batch
        if _applies(condition, oh, ow, height, width):
            out = _interpolate(batch, width, height, interpolation)
            if any(pad):
                left, right, top, bottom = pad
                out = np.pad(out, ((0, 0), (top, bottom), (left, right), (0, 0)))
            if any(crop):
                x, y, x2, y2 = crop
                out = out[:, y:y2, x:x2]
        if multiple > 1 and (out.shape[2] % multiple or out.shape[1] % multiple):
            w, h = out.shape[2], out.shape[1]
            x, y = (w % multiple) // 2, (h % multiple) // 2
            out = out[:, y : h - (h % multiple - y), x : w - (w % multiple - x)]
        out = np.clip(out, 0, 1).astype(np.float32)
        return out, int(out.shape[2]), int(out.shape[1])
