"""Image files in and out: LoadImage, LoadImageMask, SaveImage, PreviewImage.

IMAGE is numpy float32 (B, H, W, C) in [0, 1]; MASK is float32 (B, H, W). As in ComfyUI, a loaded
image is RGB and its mask is ``1 - alpha`` (zeros 64x64 when the file has no alpha).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

from visionatrix.engine.context import NodeContext
from visionatrix.engine.png import write_png
from visionatrix.engine.registry import node
from visionatrix.errors import InvalidInput, NotFound

# 16-bit and 32-bit integer greyscale modes, scaled by the 16-bit range
_WIDE_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N")
_PNG_MODES = {1: "L", 3: "RGB", 4: "RGBA"}


def as_image_batch(images: Any, name: str = "image") -> np.ndarray:
    """``images`` as float32 (B, H, W, C), C in 1/3/4; a single (H, W, C) image becomes a batch of one."""
    array = np.asarray(images, dtype=np.float32)
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4 or array.shape[-1] not in _PNG_MODES or 0 in array.shape:
        raise InvalidInput(f"'{name}' must be an image batch (B, H, W, 1|3|4), got shape {array.shape}")
    return array


def to_uint8(image: np.ndarray) -> np.ndarray:
    """One (H, W, C) float image in [0, 1] as 8-bit values (rounded, not truncated)."""
    pixels = np.clip(image, 0.0, 1.0)  # a new array in the image's own float type
    pixels *= 255.0
    return np.rint(pixels, out=pixels).astype(np.uint8)


def to_pil(image: np.ndarray) -> Image.Image:
    """One (H, W, C) float image in [0, 1] as an 8-bit Pillow image (rounded, not truncated)."""
    pixels = to_uint8(image)
    channels = pixels.shape[-1]
    return Image.fromarray(pixels[..., 0] if channels == 1 else pixels, _PNG_MODES[channels])


def resolve_input(input_dir: Path, name: Any) -> Path:
    """The file ``name`` inside ``input_dir``; refuses anything that would leave it."""
    text = str(name or "").strip()
    if text.endswith(" [input]"):  # ComfyUI's folder annotation
        text = text[: -len(" [input]")]
    if not text:
        raise InvalidInput("no image file given (input 'image' is empty)")
    relative = Path(text)
    base = input_dir.resolve()
    path = (base / relative).resolve()
    if relative.is_absolute() or ".." in relative.parts or not path.is_relative_to(base):
        raise InvalidInput(f"image file name {text!r} must name a file inside the input folder")
    if not path.is_file():
        raise NotFound(f"image file {text!r} not found in the input folder")
    return path


def open_image(path: Path) -> Image.Image:
    try:
        image = Image.open(path)
        image.load()
    except (UnidentifiedImageError, OSError) as exc:
        # Pillow's own message carries the server-side path: keep it out of the user's error
        raise InvalidInput(f"file {path.name!r} is not an image that can be read") from exc
    return image


def _frames(image: Image.Image) -> list[Image.Image]:
    """Upright frames of one size: an animation becomes a batch; MPO's extra views are dropped."""
    if image.format == "MPO":
        return [ImageOps.exif_transpose(image)]
    frames: list[Image.Image] = []
    for frame in ImageSequence.Iterator(image):
        upright = ImageOps.exif_transpose(frame)
        if frames and upright.size != frames[0].size:
            continue
        frames.append(upright)
    return frames


def _unit(pixels: np.ndarray) -> np.ndarray:
    """8-bit values as float32 in [0, 1]: ``x / 255`` in float32, one pass (Pillow's array-with-dtype
    path converts element by element: ~10x slower at 1024x1024, same values)."""
    return np.divide(pixels, np.float32(255.0), dtype=np.float32)


def _rgb(frame: Image.Image) -> np.ndarray:
    if frame.mode in _WIDE_MODES:
        grey = np.clip(np.asarray(frame, dtype=np.float32) / 65535.0, 0.0, 1.0)
        return np.repeat(grey[..., None], 3, axis=-1)
    return _unit(np.asarray(frame.convert("RGB")))


def _mask(frame: Image.Image) -> np.ndarray:
    if "A" in frame.getbands():
        alpha = frame.getchannel("A")
    elif frame.mode == "P" and "transparency" in frame.info:
        alpha = frame.convert("RGBA").getchannel("A")
    else:
        return np.zeros((64, 64), dtype=np.float32)
    return 1.0 - _unit(np.asarray(alpha))


def _batch(arrays: list[np.ndarray]) -> np.ndarray:
    return arrays[0][np.newaxis] if len(arrays) == 1 else np.stack(arrays)  # one frame: no copy


@node("LoadImage")
class LoadImage:
    """Loads ``image`` (a file in the input folder): outputs IMAGE (RGB) and MASK (1 - alpha)."""

    def run(self, ctx: NodeContext, image: str, **_: Any) -> tuple[np.ndarray, np.ndarray]:
        with open_image(resolve_input(ctx.input_dir, image)) as opened:
            frames = _frames(opened)
            pixels = _batch([_rgb(f) for f in frames])
            masks = _batch([_mask(f) for f in frames])
        return pixels, masks


@node("LoadImageMask")
class LoadImageMask:
    """Loads one channel of ``image`` as a MASK; for ``alpha`` the mask is 1 - alpha."""

    CHANNELS = ("alpha", "red", "green", "blue")

    def run(self, ctx: NodeContext, image: str, channel: str = "alpha", **_: Any) -> tuple[np.ndarray]:
        if channel not in self.CHANNELS:
            raise InvalidInput(f"channel {channel!r} is not one of {list(self.CHANNELS)}")
        with open_image(resolve_input(ctx.input_dir, image)) as opened:
            frame = ImageOps.exif_transpose(opened)
            if frame.mode in _WIDE_MODES:
                frame = Image.fromarray(np.rint(_rgb(frame) * 255).astype(np.uint8))
            band = frame.convert("RGBA").getchannel(channel[0].upper())
            mask = np.asarray(band, dtype=np.float32) / 255.0
        if channel == "alpha":
            mask = 1.0 - mask
        return (mask[None],)


@node("SaveImage")
class SaveImage:
    """Writes each image of the batch as ``{node_id}_{n}.png`` in the output folder."""

    output = True

    def run(self, ctx: NodeContext, images: Any, **_: Any) -> tuple[()]:
        batch = as_image_batch(images, "images")
        ctx.output_dir.mkdir(parents=True, exist_ok=True)
        for n, image in enumerate(batch):
            path = ctx.output_dir / f"{ctx.node_id}_{n}.png"
            write_png(path, to_uint8(image))  # lossless; faster than Pillow (engine/png.py)
            ctx.add_output(path)
            ctx.progress((n + 1) / len(batch))
        return ()


@node("PreviewImage")
class PreviewImage(SaveImage):
    """A preview is a result like any other here: saved the same way."""
