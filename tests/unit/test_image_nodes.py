"""engine.nodes.image_io and image_ops: real files, real Pillow, exact pixel checks."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from visionatrix.engine.context import NodeContext, RunEnv
from visionatrix.engine.registry import lookup
from visionatrix.errors import InvalidInput, NotFound


@pytest.fixture
def ctx(tmp_path: Path) -> NodeContext:
    for name in ("input", "output", "tmp"):
        (tmp_path / name).mkdir()
    env = RunEnv(
        models=None,  # type: ignore[arg-type]
        input_dir=tmp_path / "input",
        output_dir=tmp_path / "output",
        tmp_dir=tmp_path / "tmp",
    )
    return NodeContext(env, "12", "test")


def run(class_type: str, ctx: NodeContext, **inputs: Any) -> tuple[Any, ...]:
    cls = lookup(class_type)
    assert cls is not None, class_type
    return cls().run(ctx, **inputs)


def gradient(height: int, width: int, channels: int = 3) -> np.ndarray:
    """A (1, H, W, C) batch whose values are exact multiples of 1/255."""
    values = (np.arange(height * width * channels) * 7 % 256).astype(np.float32) / 255.0
    return values.reshape(1, height, width, channels)


# --- LoadImage / LoadImageMask --------------------------------------------------------------


def test_load_rgba_gives_rgb_image_and_inverted_alpha_mask(ctx: NodeContext) -> None:
    pixels = np.zeros((2, 3, 4), dtype=np.uint8)
    pixels[..., 0] = 255
    pixels[..., 3] = [[0, 51, 255], [255, 255, 102]]
    Image.fromarray(pixels, "RGBA").save(ctx.input_dir / "a.png")

    image, mask = run("LoadImage", ctx, image="a.png", upload="image")
    assert image.shape == (1, 2, 3, 3) and image.dtype == np.float32
    np.testing.assert_array_equal(image[0, ..., 0], 1.0)
    assert mask.shape == (1, 2, 3) and mask.dtype == np.float32
    np.testing.assert_allclose(mask[0], [[1.0, 0.8, 0.0], [0.0, 0.0, 0.6]], atol=1e-6)


def test_load_without_alpha_gives_an_empty_64px_mask(ctx: NodeContext) -> None:
    Image.new("RGB", (5, 4), (255, 128, 0)).save(ctx.input_dir / "b.jpg", quality=100)
    image, mask = run("LoadImage", ctx, image="b.jpg")
    assert image.shape == (1, 4, 5, 3)
    assert mask.shape == (1, 64, 64) and not mask.any()


def test_load_applies_exif_orientation(ctx: NodeContext) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    Image.new("RGB", (6, 2), (10, 20, 30)).save(ctx.input_dir / "r.jpg", exif=exif)
    image, _ = run("LoadImage", ctx, image="r.jpg")
    assert image.shape == (1, 6, 2, 3)


def test_load_sixteen_bit_grey_uses_the_full_range(ctx: NodeContext) -> None:
    grey = np.array([[0, 32768, 65535]], dtype=np.uint16)
    Image.fromarray(grey).save(ctx.input_dir / "g16.png")
    image, _ = run("LoadImage", ctx, image="g16.png")
    np.testing.assert_allclose(image[0, 0, :, 1], [0.0, 32768 / 65535, 1.0], atol=1e-6)


def test_load_animation_becomes_a_batch(ctx: NodeContext) -> None:
    frames = [Image.new("RGB", (4, 4), color) for color in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(ctx.input_dir / "anim.gif", save_all=True, append_images=frames[1:])
    image, mask = run("LoadImage", ctx, image="anim.gif")
    assert image.shape == (2, 4, 4, 3) and mask.shape[0] == 2
    assert image[0, 0, 0, 0] > 0.9 and image[1, 0, 0, 2] > 0.9


@pytest.mark.parametrize("name", ["../secret.png", "/etc/passwd", "sub/../../secret.png"])
def test_load_refuses_names_outside_the_input_folder(ctx: NodeContext, name: str) -> None:
    Image.new("RGB", (2, 2)).save(ctx.input_dir.parent / "secret.png")
    with pytest.raises(InvalidInput, match="must name a file inside the input folder"):
        run("LoadImage", ctx, image=name)


def test_load_refuses_a_symlink_leading_outside(ctx: NodeContext) -> None:
    outside = ctx.input_dir.parent / "outside.png"
    Image.new("RGB", (2, 2)).save(outside)
    os.symlink(outside, ctx.input_dir / "link.png")
    with pytest.raises(InvalidInput, match="inside the input folder"):
        run("LoadImage", ctx, image="link.png")


def test_load_names_a_missing_file_and_a_non_image(ctx: NodeContext) -> None:
    with pytest.raises(NotFound, match="'nope.png' not found in the input folder"):
        run("LoadImage", ctx, image="nope.png")
    with pytest.raises(InvalidInput, match="input 'image' is empty"):
        run("LoadImage", ctx, image="")
    (ctx.input_dir / "notes.png").write_text("hello")
    with pytest.raises(InvalidInput, match="'notes.png' is not an image"):
        run("LoadImage", ctx, image="notes.png")


def test_load_accepts_comfy_input_annotation_and_subfolders(ctx: NodeContext) -> None:
    (ctx.input_dir / "task").mkdir()
    Image.new("RGB", (3, 3), (0, 255, 0)).save(ctx.input_dir / "task" / "x.png")
    image, _ = run("LoadImage", ctx, image="task/x.png [input]")
    assert image.shape == (1, 3, 3, 3) and image[0, 1, 1, 1] == 1.0


@pytest.mark.parametrize(
    ("channel", "expected"), [("red", 0.2), ("green", 0.4), ("blue", 0.6), ("alpha", 0.2)]
)
def test_load_image_mask_reads_one_channel(ctx: NodeContext, channel: str, expected: float) -> None:
    Image.new("RGBA", (3, 2), (51, 102, 153, 204)).save(ctx.input_dir / "m.png")
    (mask,) = run("LoadImageMask", ctx, image="m.png", channel=channel)
    assert mask.shape == (1, 2, 3)
    np.testing.assert_allclose(mask, expected, atol=1e-6)


# --- SaveImage ------------------------------------------------------------------------------


@pytest.mark.parametrize(("channels", "mode"), [(3, "RGB"), (4, "RGBA"), (1, "L")])
def test_save_writes_each_batch_item_losslessly(ctx: NodeContext, channels: int, mode: str) -> None:
    batch = np.concatenate([gradient(3, 5, channels), 1.0 - gradient(3, 5, channels)])
    assert run("SaveImage", ctx, images=batch, filename_prefix="ComfyUI") == ()

    paths = [ctx.output_dir / "12_0.png", ctx.output_dir / "12_1.png"]
    assert ctx.env.outputs == {"12": paths}
    for path, expected in zip(paths, batch, strict=True):
        with Image.open(path) as saved:
            assert saved.mode == mode and saved.size == (5, 3)
            pixels = np.asarray(saved).reshape(3, 5, channels)
        np.testing.assert_array_equal(pixels, np.rint(expected * 255).astype(np.uint8))


def test_save_then_load_round_trips_exactly(ctx: NodeContext) -> None:
    image = gradient(4, 6)
    run("SaveImage", ctx, images=image)
    (ctx.output_dir / "12_0.png").rename(ctx.input_dir / "back.png")
    loaded, _ = run("LoadImage", ctx, image="back.png")
    np.testing.assert_array_equal(loaded, image)


def test_save_clips_out_of_range_values_and_refuses_bad_shapes(ctx: NodeContext) -> None:
    run("SaveImage", ctx, images=np.full((1, 2, 2, 3), 1.7, dtype=np.float32))
    with Image.open(ctx.output_dir / "12_0.png") as saved:
        assert np.asarray(saved).min() == 255
    with pytest.raises(
        InvalidInput, match=r"'images' must be an image batch \(B, H, W, 1\|3\|4\), got shape \(2, 2\)"
    ):
        run("SaveImage", ctx, images=np.zeros((2, 2)))


def test_preview_image_is_an_output_too() -> None:
    assert getattr(lookup("PreviewImage"), "output", False) is True
    assert getattr(lookup("SaveImage"), "output", False) is True
    assert not getattr(lookup("LoadImage"), "output", False)


# --- ImageScale family ----------------------------------------------------------------------


def test_scale_nearest_doubles_pixels_exactly(ctx: NodeContext) -> None:
    image = gradient(2, 3)
    (out,) = run(
        "ImageScale", ctx, image=image, upscale_method="nearest-exact", width=6, height=4, crop="disabled"
    )
    np.testing.assert_array_equal(out, np.repeat(np.repeat(image, 2, axis=1), 2, axis=2))


def test_scale_area_averages_blocks(ctx: NodeContext) -> None:
    image = gradient(4, 4)
    (out,) = run("ImageScale", ctx, image=image, upscale_method="area", width=2, height=2, crop="disabled")
    expected = image.reshape(1, 2, 2, 2, 2, 3).mean(axis=(2, 4))
    np.testing.assert_allclose(out, expected, atol=1e-5)


@pytest.mark.parametrize("method", ["bilinear", "bicubic", "lanczos"])
def test_scale_smooth_filters_keep_flat_colours_and_range(ctx: NodeContext, method: str) -> None:
    flat = np.full((2, 8, 8, 3), 0.25, dtype=np.float32)
    (out,) = run("ImageScale", ctx, image=flat, upscale_method=method, width=13, height=5, crop="disabled")
    assert out.shape == (2, 5, 13, 3)
    np.testing.assert_allclose(out, 0.25, atol=1e-5)
    (sharp,) = run("ImageScale", ctx, image=gradient(8, 8), upscale_method=method, width=20, height=20)
    assert sharp.min() >= 0.0 and sharp.max() <= 1.0


def test_scale_zero_side_keeps_aspect_and_both_zero_is_identity(ctx: NodeContext) -> None:
    image = gradient(10, 20)
    (wide,) = run(
        "ImageScale", ctx, image=image, upscale_method="bilinear", width=0, height=5, crop="disabled"
    )
    assert wide.shape == (1, 5, 10, 3)
    (tall,) = run(
        "ImageScale", ctx, image=image, upscale_method="bilinear", width=7, height=0, crop="disabled"
    )
    assert tall.shape == (1, 4, 7, 3)  # round(10 * 7 / 20) = 4 (banker's rounding of 3.5)
    (same,) = run(
        "ImageScale", ctx, image=image, upscale_method="bilinear", width=0, height=0, crop="disabled"
    )
    np.testing.assert_array_equal(same, image)


def test_scale_center_crop_cuts_the_sides_before_scaling(ctx: NodeContext) -> None:
    image = np.zeros((1, 4, 8, 3), dtype=np.float32)
    image[:, :, 2:6] = 1.0  # white centre square, black bands left and right
    (out,) = run(
        "ImageScale", ctx, image=image, upscale_method="nearest-exact", width=2, height=2, crop="center"
    )
    np.testing.assert_array_equal(out, 1.0)


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"upscale_method": "sinc"}, "upscale_method 'sinc' is not one of"),
        ({"crop": "top"}, "crop 'top' is not one of"),
        ({"width": -1}, "'width' must be a whole number from 0 to 16384, got -1"),
        ({"height": "tall"}, "'height' must be a whole number"),
    ],
)
def test_scale_refuses_bad_inputs_naming_them(ctx: NodeContext, inputs: dict[str, Any], message: str) -> None:
    values = {"upscale_method": "bilinear", "width": 4, "height": 4, "crop": "disabled", **inputs}
    with pytest.raises(InvalidInput, match=message):
        run("ImageScale", ctx, image=gradient(2, 2), **values)


def test_scale_by_rounds_the_new_size(ctx: NodeContext) -> None:
    (out,) = run("ImageScaleBy", ctx, image=gradient(10, 6), upscale_method="lanczos", scale_by=1.5)
    assert out.shape == (1, 15, 9, 3)
    (small,) = run("ImageScaleBy", ctx, image=gradient(8, 8), upscale_method="bicubic", scale_by=0.25)
    assert small.shape == (1, 2, 2, 3)
    with pytest.raises(InvalidInput, match="'scale_by' must be above 0"):
        run("ImageScaleBy", ctx, image=gradient(2, 2), upscale_method="bicubic", scale_by=0)


def test_scale_to_total_pixels_hits_the_megapixels_keeping_aspect(ctx: NodeContext) -> None:
    image = gradient(30, 40)
    (out,) = run("ImageScaleToTotalPixels", ctx, image=image, upscale_method="bicubic", megapixels=0.01)
    height, width = out.shape[1:3]
    assert (height, width) == (89, 118)  # sqrt(0.01 * 2**20 / 1200) = 2.956 -> 88.7 x 118.2
    (stepped,) = run(
        "ImageScaleToTotalPixels",
        ctx,
        image=image,
        upscale_method="area",
        megapixels=0.01,
        resolution_steps=8,
    )
    assert stepped.shape[1:3] == (88, 120)


# --- crop, invert, batch --------------------------------------------------------------------


def test_crop_takes_the_region_and_stops_at_the_edges(ctx: NodeContext) -> None:
    image = gradient(6, 8)
    (out,) = run("ImageCrop", ctx, image=image, width=3, height=2, x=1, y=4)
    np.testing.assert_array_equal(out, image[:, 4:6, 1:4])
    (edge,) = run("ImageCrop", ctx, image=image, width=5, height=5, x=20, y=3)
    np.testing.assert_array_equal(edge, image[:, 3:6, 7:8])


def test_invert(ctx: NodeContext) -> None:
    image = gradient(3, 3, 4)
    (out,) = run("ImageInvert", ctx, image=image)
    np.testing.assert_allclose(out, 1.0 - image)
    assert out.dtype == np.float32


def test_batch_appends_and_resizes_the_second_image(ctx: NodeContext) -> None:
    first = np.full((1, 4, 4, 3), 0.5, dtype=np.float32)
    second = np.full((2, 8, 16, 3), 0.75, dtype=np.float32)
    (out,) = run("ImageBatch", ctx, image1=first, image2=second)
    assert out.shape == (3, 4, 4, 3)
    np.testing.assert_allclose(out[0], 0.5)
    np.testing.assert_allclose(out[1:], 0.75, atol=1e-5)
    with pytest.raises(InvalidInput, match="image1 has 3 channels but image2 has 4"):
        run("ImageBatch", ctx, image1=first, image2=np.zeros((1, 4, 4, 4), dtype=np.float32))


def test_loaded_values_are_exactly_the_8bit_values_over_255(ctx: NodeContext) -> None:
    """The fast conversion gives the same float32 values Pillow's array-with-dtype path gives."""
    pixels = np.random.default_rng(7).integers(0, 256, (33, 47, 4), dtype=np.uint8)
    Image.fromarray(pixels, "RGBA").save(ctx.input_dir / "r.png")
    image, mask = run("LoadImage", ctx, image="r.png")
    with Image.open(ctx.input_dir / "r.png") as opened:
        expected_rgb = np.asarray(opened.convert("RGB"), dtype=np.float32) / 255.0
        expected_mask = 1.0 - np.asarray(opened.getchannel("A"), dtype=np.float32) / 255.0
    assert image.dtype == np.float32 and mask.dtype == np.float32
    np.testing.assert_array_equal(image[0], expected_rgb)
    np.testing.assert_array_equal(mask[0], expected_mask)
