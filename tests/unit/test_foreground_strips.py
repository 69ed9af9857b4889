"""nets.foreground on the thread pool: cut into strips, it computes exactly what one whole-image
pass of the same scipy/numpy operations computes (the same bits, on any number of threads)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import uniform_filter

from visionatrix.engine.nets import foreground


def _whole_blur(x: np.ndarray, r: int) -> np.ndarray:
    return np.asarray(uniform_filter(x, size=(r, r) + (1,) * (x.ndim - 2), mode="mirror"))


def _whole_image(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Blur fusion (radii 90, then 6) as plain whole-array operations, one thread."""
    image = foreground.to_8bit(rgb) / 255.0
    a = (foreground.to_8bit(alpha) / 255.0)[:, :, None]

    def fuse(f: np.ndarray, b: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray]:
        blurred_a = _whole_blur(a, r)
        blurred_f = _whole_blur(f * a, r) / (blurred_a + 1e-5)
        blurred_b = _whole_blur(b * (1 - a), r) / ((1 - blurred_a) + 1e-5)
        return np.clip(blurred_f + a * (image - a * blurred_f - (1 - a) * blurred_b), 0, 1), blurred_b

    f, b = fuse(image, image, foreground.WIDE_RADIUS)
    f, _ = fuse(f, b, foreground.NARROW_RADIUS)
    return (f * 255.0).astype(np.uint8).astype(np.float32) / 255.0


@pytest.mark.parametrize("workers", [1, 2, 5])
def test_strips_give_the_same_bits_as_one_pass(workers: int) -> None:
    rng = np.random.default_rng(workers)
    shape = (389, 277)  # more rows and columns than 5 strips of the minimum height
    rgb = rng.random((*shape, 3), dtype=np.float32)
    # soft and hard edges, flat 0 and 1 regions: where 8-bit truncation is most sensitive
    alpha = np.clip(rng.normal(0.5, 0.6, shape), 0, 1).astype(np.float32)
    alpha[:100] = 1.0
    alpha[-60:] = 0.0
    got = foreground.estimate_foreground(rgb, alpha, workers=workers)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, _whole_image(rgb, alpha))


@pytest.mark.parametrize("radius", [6, 90])
def test_box_blur_in_strips_is_scipys_uniform_filter(radius: int) -> None:
    x = np.random.default_rng(radius).random((300, 257, 3))
    np.testing.assert_array_equal(foreground.box_blur(x, radius, workers=4), _whole_blur(x, radius))
    single = x[..., :1]
    np.testing.assert_array_equal(foreground.box_blur(single, radius, workers=3), _whole_blur(single, radius))
