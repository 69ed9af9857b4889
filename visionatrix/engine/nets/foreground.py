"""Foreground colour estimation by blur fusion (Forte et al., "Approximate Fast Foreground Colour
Estimation", ICIP 2021), as ComfyUI_BiRefNet_ll's ``RembgByBiRefNet`` applies it to a cut-out.

Where alpha is partial, an edge pixel's colour mixes foreground and background. The estimate
takes local (box-blurred) means of the foreground and background around each pixel and solves
for the foreground colour; it runs twice, with a wide radius (90) and then a narrow one (6) using
the first pass's estimates. Like the node: the image and the mask are quantised to 8 bits first
(truncating), the box blur is OpenCV's ``cv2.blur`` (window ``[i - r//2, i + r - 1 - r//2]``,
edges mirrored without repeating the edge pixel), and the result is truncated to 8 bits.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import uniform_filter

WIDE_RADIUS = 90
NARROW_RADIUS = 6
_EPS = 1e-5


def box_blur(x: np.ndarray, r: int) -> np.ndarray:
    """The mean over an r×r window of each channel (``cv2.blur(x, (r, r))``, BORDER_REFLECT_101)."""
    size = (r, r) + (1,) * (x.ndim - 2)
    return np.asarray(uniform_filter(x, size=size, mode="mirror"))


def _fuse(
    image: np.ndarray, fg: np.ndarray, bg: np.ndarray, alpha: np.ndarray, r: int
) -> tuple[np.ndarray, np.ndarray]:
    blurred_alpha = box_blur(alpha, r)
    blurred_fg = box_blur(fg * alpha, r) / (blurred_alpha + _EPS)
    blurred_bg = box_blur(bg * (1 - alpha), r) / ((1 - blurred_alpha) + _EPS)
    fg = blurred_fg + alpha * (image - alpha * blurred_fg - (1 - alpha) * blurred_bg)
    return np.clip(fg, 0, 1), blurred_bg


def to_8bit(x: np.ndarray) -> np.ndarray:
    """Float [0, 1] -> uint8 by truncation, as ``Image.fromarray(np.clip(255 * x, 0, 255).astype(uint8))``."""
    return np.clip(255.0 * x, 0, 255).astype(np.uint8)


def estimate_foreground(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """(H, W, 3) float RGB in [0, 1] and (H, W) alpha -> the estimated foreground RGB, float32 in [0, 1]."""
    image = to_8bit(rgb) / 255.0
    a = (to_8bit(alpha) / 255.0)[:, :, None]
    fg, bg = _fuse(image, image, image, a, WIDE_RADIUS)
    fg, _ = _fuse(image, fg, bg, a, NARROW_RADIUS)
    return (fg * 255.0).astype(np.uint8).astype(np.float32) / 255.0
