"""Mask nodes the inpainting flows use, with their packs' names and rules.

    ImageToMask(image, channel)     -> (MASK,)   ComfyUI: one channel (red, green, blue, alpha)
    ToBinaryMask(mask, threshold)   -> (MASK,)   Impact Pack: 1 above threshold/255, else 0

MASK is float32 (B, H, W) in [0, 1].
"""

from __future__ import annotations

from typing import Any

import numpy as np

from visionatrix.engine.context import NodeContext
from visionatrix.engine.nodes.image_io import as_image_batch
from visionatrix.engine.registry import node
from visionatrix.errors import InvalidInput

CHANNELS = ("red", "green", "blue", "alpha")


@node("ImageToMask")
class ImageToMask:
    def run(self, ctx: NodeContext, image: Any, channel: str = "red") -> tuple[np.ndarray]:
        batch = as_image_batch(image)
        if channel not in CHANNELS:
            raise InvalidInput(f"ImageToMask: channel {channel!r} is not one of {list(CHANNELS)}")
        index = CHANNELS.index(channel)
        if index >= batch.shape[-1]:
            raise InvalidInput(
                f"ImageToMask: the image has no {channel} channel ({batch.shape[-1]} channels)"
            )
        return (np.ascontiguousarray(batch[..., index]),)


@node("ToBinaryMask")
class ToBinaryMask:
    def run(self, ctx: NodeContext, mask: Any, threshold: Any = 20) -> tuple[np.ndarray]:
        level = int(threshold)
        if not 1 <= level <= 255:
            raise InvalidInput(f"ToBinaryMask: threshold must be in 1..255, got {threshold!r}")
        m = np.asarray(mask, dtype=np.float32)
        if m.ndim == 4:  # Impact Pack's make_3d_mask
            m = m[0]
        elif m.ndim == 2:
            m = m[None]
        if m.ndim != 3:
            raise InvalidInput(f"ToBinaryMask: 'mask' must be a mask (B, H, W), got shape {m.shape}")
        return ((m > level / 255.0).astype(np.float32),)
