"""Mask nodes with the names and results of the node packs the Visionatrix flows use.

    ImageToMask(image, channel)     -> (MASK,)   ComfyUI: one channel of the image
    ToBinaryMask(mask, threshold)   -> (MASK,)   Impact Pack: 1 where mask > threshold / 255, else 0

IMAGE is float32 (B, H, W, C) in [0, 1] and MASK float32 (B, H, W), as ``image_io`` has them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from visionatrix.engine.context import NodeContext
from visionatrix.engine.registry import node
from visionatrix.errors import InvalidInput

CHANNELS = ("red", "green", "blue", "alpha")


@node("ImageToMask")
class ImageToMask:
    def run(self, ctx: NodeContext, image: np.ndarray, channel: str = "red", **_: Any) -> tuple[np.ndarray]:
        if channel not in CHANNELS:
            raise InvalidInput(f"ImageToMask: channel {channel!r} is not one of {', '.join(CHANNELS)}")
        index = CHANNELS.index(channel)
        if index >= image.shape[-1]:
            raise InvalidInput(f"ImageToMask: the image has {image.shape[-1]} channels, no {channel}")
        return (np.ascontiguousarray(image[..., index], dtype=np.float32),)


@node("ToBinaryMask")
class ToBinaryMask:
    def run(self, ctx: NodeContext, mask: np.ndarray, threshold: int = 20, **_: Any) -> tuple[np.ndarray]:
        if not 1 <= int(threshold) <= 255:
            raise InvalidInput(f"ToBinaryMask: threshold must be within 1..255, got {threshold}")
        values = np.asarray(mask, dtype=np.float32)
        values = values[None] if values.ndim == 2 else values  # the pack makes every mask 3-D first
        return ((values > int(threshold) / 255.0).astype(np.float32),)
