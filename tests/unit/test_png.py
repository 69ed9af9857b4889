"""engine.png: the fast PNG writer gives back exactly the pixels it was given, as Pillow reads them,
and SaveImage's files hold the same pixels as Pillow's own encoder writes."""

from __future__ import annotations

import io
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from visionatrix.engine import png
from visionatrix.engine.context import NodeContext, RunEnv
from visionatrix.engine.nodes.image_io import to_pil
from visionatrix.engine.registry import lookup

isal_zlib = pytest.importorskip("isal.isal_zlib")
DEFLATE = [pytest.param(isal_zlib, id="isal"), pytest.param(zlib, id="zlib")]


def decoded(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG"
        image.load()
        return np.asarray(image)


def photo(height: int, width: int, channels: int) -> np.ndarray:
    """Smooth gradients plus noise: rows where each of the None/Sub/Up filters wins."""
    rng = np.random.default_rng(height * 31 + width * 7 + channels)
    y, x = np.mgrid[0:height, 0:width]
    base = (x * 3 + y * 2)[..., None] + np.arange(channels) * 40
    noise = rng.integers(0, 9, (height, width, channels))
    pixels = (base + noise) % 256
    pixels[: height // 3] = rng.integers(0, 256, pixels[: height // 3].shape)  # a noisy band
    return pixels.astype(np.uint8)


@pytest.mark.parametrize("deflate", DEFLATE)
@pytest.mark.parametrize(
    "shape",
    [(1, 1, 3), (1, 9, 4), (7, 1, 1), (3, 5, 2), (2, 2), (64, 48, 3), (700, 1300, 4), (1024, 1024, 3)],
)
def test_decodes_to_the_exact_pixels(shape: tuple[int, ...], deflate: object) -> None:
    channels = shape[2] if len(shape) == 3 else 1
    pixels = photo(shape[0], shape[1], channels).reshape(shape)
    back = decoded(png.encode_png(pixels, deflate))  # type: ignore[arg-type]
    assert back.size == pixels.size
    np.testing.assert_array_equal(back.reshape(pixels.shape), pixels)


def test_large_images_are_cut_into_strips_that_join_into_one_stream() -> None:
    pixels = photo(1024, 1024, 4)
    data = png.encode_png(pixels)
    np.testing.assert_array_equal(decoded(data), pixels)
    # one IDAT chunk whose zlib stream the standard library inflates whole, its checksum checked
    start = data.index(b"IDAT") + 4
    length = int.from_bytes(data[start - 8 : start - 4], "big")
    assert len(zlib.decompress(data[start : start + length])) == 1024 * (1024 * 4 + 1)


def test_every_filter_type_is_chosen_where_it_is_cheapest() -> None:
    rows = np.zeros((3, 8), dtype=np.uint8)
    rows[0] = [0, 0, 0, 0, 0, 0, 0, 0]  # all zero: None costs nothing
    rows[1] = [10, 20, 30, 40, 50, 60, 70, 80]  # a ramp: Sub leaves 10s
    rows[2] = [10, 20, 30, 40, 50, 60, 70, 81]  # the row above, nearly: Up leaves zeros
    filtered = png._filter_rows(rows, 1, 0, 3)
    assert filtered[:, 0].tolist() == [0, 1, 2]
    assert filtered[2, 1:].tolist() == [0, 0, 0, 0, 0, 0, 0, 1]


@pytest.mark.parametrize(
    "bad", [np.zeros((4, 4, 3), np.float32), np.zeros((4, 4, 5), np.uint8), np.zeros((0, 4, 3), np.uint8)]
)
def test_refuses_what_is_not_an_8bit_image(bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match="PNG pixels"):
        png.encode_png(bad)


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_save_image_writes_the_pixels_pillows_encoder_writes(tmp_path: Path, channels: int) -> None:
    """Speed work changes no pixel: a SaveImage file decodes exactly like the same batch saved by
    Pillow (the encoder before), including float values between the 8-bit steps and out of range."""
    for name in ("input", "output", "tmp"):
        (tmp_path / name).mkdir()
    env = RunEnv(
        models=None, input_dir=tmp_path / "input", output_dir=tmp_path / "output", tmp_dir=tmp_path / "tmp"
    )  # type: ignore[arg-type]
    rng = np.random.default_rng(channels)
    batch = rng.uniform(-0.1, 1.1, (2, 37, 53, channels)).astype(np.float32)
    save = lookup("SaveImage")
    assert save is not None
    save().run(NodeContext(env, "9", "SaveImage"), images=batch)
    assert sorted(p.name for p in env.outputs["9"]) == ["9_0.png", "9_1.png"]
    for index, path in enumerate(env.outputs["9"]):
        buffer = io.BytesIO()
        to_pil(batch[index]).save(buffer, format="PNG", compress_level=4)
        np.testing.assert_array_equal(decoded(path.read_bytes()), decoded(buffer.getvalue()))
