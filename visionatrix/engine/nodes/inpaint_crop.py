"""Crop-and-stitch inpainting: lquesada/ComfyUI-Inpaint-CropAndStitch's ``InpaintCrop`` / ``InpaintStitch``
(the classic nodes, as in the node pack's 2.1.x that Visionatrix pins), computed as they compute.

    InpaintCrop(image, mask, context_expand_pixels, context_expand_factor, fill_mask_holes,
                blur_mask_pixels, invert_mask, blend_pixels, rescale_algorithm, mode, force_width,
                force_height, rescale_factor, min_width, min_height, max_width, max_height, padding,
                optional_context_mask?)            -> (STITCH, cropped IMAGE, cropped MASK)
    InpaintStitch(stitch, inpainted_image, rescale_algorithm) -> (IMAGE,)

The image is first mirrored out to a canvas half its size wider on every side (so a context area
near an edge never samples black), the context area (mask, or mask + context mask, grown) is
fitted to the mode's size rules and cut out, rescaled so the sampler works at a useful size; the
stitch scales the result back and blends it in with the (optionally blurred) mask. Rescaling goes
through 8-bit Pillow images as the pack's torchvision path does (values truncated, ``bislerp``
meaning bicubic). Kept as in the pack: the blend mask is transposed when stitching a rescaled
crop (its ``movedim`` on a 3-D tensor), so results match the pack's pixel for pixel.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from visionatrix.engine.context import NodeContext
from visionatrix.engine.nodes.image_io import as_image_batch
from visionatrix.engine.nodes.inpaint import as_mask
from visionatrix.engine.registry import node
from visionatrix.errors import InvalidInput

if TYPE_CHECKING:
    import torch

ALGORITHMS = ("nearest", "bilinear", "bicubic", "bislerp", "lanczos", "box", "hamming")
MODES = ("ranged size", "forced size", "free size")
PADDINGS = (8, 16, 32, 64, 128, 256, 512)
MAX_CANVAS_PIXELS = 1 << 28  # 16384²: the node upscales the whole (mirrored) image, not just the crop


def rescale(samples: torch.Tensor, width: int, height: int, algorithm: str) -> torch.Tensor:
    """(1, C, H, W) -> (1, C, height, width) through an 8-bit Pillow image (the pack's ``rescale``)."""
    import torch

    name = "bicubic" if algorithm == "bislerp" else algorithm
    pixels = (samples[0] * 255).to(torch.uint8).permute(1, 2, 0).numpy()  # torchvision truncates
    image = Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)
    resized = np.asarray(image.resize((width, height), getattr(Image.Resampling, name.upper())))
    out = torch.from_numpy(resized.astype(np.float32) / 255.0)
    return (out[None] if out.ndim == 2 else out.permute(2, 0, 1))[None]


def grow_and_blur(mask: torch.Tensor, pixels: float) -> torch.Tensor:
    """Dilate by about ``pixels``·3/8 and blur with sigma ``pixels``/4 (the pack's ``grow_and_blur_mask``)."""
    import torch
    from scipy.ndimage import gaussian_filter, grey_dilation

    if pixels <= 0.001:
        return mask
    sigma = pixels / 4
    size = math.ceil(sigma * 1.5 + 1)
    grown = [grey_dilation(m.numpy(), footprint=np.ones((size, size), dtype=np.uint8)) for m in mask]
    stacked = np.clip(np.stack(grown).astype(np.float32) * 255, 0.0, 1.0)
    return torch.from_numpy(np.clip(gaussian_filter(stacked, sigma=sigma), 0.0, 1.0).astype(np.float32))


def _fill_holes(mask: torch.Tensor) -> torch.Tensor:
    import torch
    from scipy.ndimage import binary_closing, binary_fill_holes

    out = [
        binary_fill_holes(binary_closing(m.numpy() > 0, structure=np.ones((5, 5)), border_value=1))
        for m in mask
    ]
    return torch.from_numpy(np.stack(out).astype(np.float32))


def _mirror(canvas: torch.Tensor, top: int, left: int, h: int, w: int) -> None:
    """Fill the borders of ``canvas`` (B, H, W, ...) around the (top, left, h, w) block by mirroring it."""
    import torch

    up, down = min(top, h), min(canvas.shape[1] - top - h, h)
    lt, rt = min(left, w), min(canvas.shape[2] - left - w, w)
    cols = slice(left, left + w)
    canvas[:, top - up : top, cols] = torch.flip(canvas[:, top : top + up, cols], [1])
    canvas[:, top + h : top + h + down, cols] = torch.flip(canvas[:, top + h - down : top + h, cols], [1])
    rows = slice(top - up, top + h + down)
    canvas[:, rows, left - lt : left] = torch.flip(canvas[:, rows, left : left + lt], [2])
    canvas[:, rows, left + w : left + w + rt] = torch.flip(canvas[:, rows, left + w - rt : left + w], [2])


def _to_aspect(box: list[int], width: int, height: int, target_w: float, target_h: float) -> list[int]:
    x_min, x_max, y_min, y_max = box
    cur_w, cur_h = x_max - x_min + 1, y_max - y_min + 1
    aspect = target_w / target_h
    if cur_w / cur_h < aspect:
        extend = int(cur_h * aspect) - cur_w
        x_min, x_max = max(x_min - extend // 2, 0), min(x_max + extend // 2, width - 1)
    else:
        extend = int(cur_w / aspect) - cur_h
        y_min, y_max = max(y_min - extend // 2, 0), min(y_max + extend // 2, height - 1)
    return [int(x_min), int(x_max), int(y_min), int(y_max)]


def _to_preferred(box: list[int], preferred: tuple[int, int, int, int]) -> list[int]:
    x_min, x_max, y_min, y_max = box
    px0, px1, py0, py1 = preferred
    if px0 <= x_min and px1 >= x_max and py0 <= y_min and py1 >= y_max:
        return box
    if x_max - x_min + 1 <= px1 - px0 + 1:
        shift = px0 - x_min if x_min < px0 else -(x_max - px1) if x_max > px1 else 0
        x_min, x_max = x_min + shift, x_max + shift
    if y_max - y_min + 1 <= py1 - py0 + 1:
        shift = py0 - y_min if y_min < py0 else -(y_max - py1) if y_max > py1 else 0
        y_min, y_max = y_min + shift, y_max + shift
    return [int(x_min), int(x_max), int(y_min), int(y_max)]


def _pad_range(low: int, high: int, bound: int, padding: int) -> tuple[int, int]:
    size = high - low + 1
    size = size if size % padding == 0 else (size // padding + 1) * padding
    new_low = max((low + high) // 2 - size // 2, 0)
    new_high = new_low + size - 1
    if new_high >= bound:
        new_high = bound - 1
        new_low = max(new_high - size + 1, 0)
    if new_high - new_low + 1 != size:
        new_low = max(new_high - size + 1, 0)
    return new_low, new_high


def _check_room(width: int, height: int, channels: int) -> None:
    """Refuse a rescale the worker's memory cannot hold (a tiny mask scaled up to ``min_width``)."""
    from visionatrix.engine.nets.memory import free_bytes

    needed = width * height * (channels + 2) * 4 * 3  # image and two masks, float32, a few copies
    free = free_bytes("cpu")
    if width * height > MAX_CANVAS_PIXELS or (free is not None and needed > free):
        raise InvalidInput(
            f"InpaintCrop: the masked area is so small that scaling it to the requested size makes a "
            f"{width}x{height} canvas; draw a larger mask or lower min_width/min_height"
        )


def _context_box(context: torch.Tensor, grow: tuple[float, float, float]) -> list[int]:
    """The bounding box (x_min, x_max, y_min, y_max) of ``context``, grown as the pack grows it."""
    import torch

    ys, xs = torch.nonzero(context[0], as_tuple=True)
    y_min, y_max, x_min, x_max = int(ys.min()), int(ys.max()), int(xs.min()), int(xs.max())
    height, width = context.shape[1:3]
    factor, pixels, blend = grow
    y_grow = round(max((y_max - y_min + 1) * (factor - 1), pixels, blend**1.5))
    x_grow = round(max((x_max - x_min + 1) * (factor - 1), pixels, blend**1.5))
    return [
        max(x_min - x_grow // 2, 0),
        min(x_max + x_grow // 2, width - 1),
        max(y_min - y_grow // 2, 0),
        min(y_max + y_grow // 2, height - 1),
    ]


def _fit_ranged(
    box: list[int], size: dict[str, int], canvas: tuple[int, int], preferred: tuple[int, ...]
) -> tuple[list[int], float]:
    """The box adjusted to the aspect ratios ``size`` allows, and the rescale factor that fits it."""
    width, height = canvas
    cur_w, cur_h = box[1] - box[0] + 1, box[3] - box[2] + 1
    min_aspect, max_aspect = size["min_width"] / size["max_height"], size["max_width"] / size["min_height"]
    if cur_w / cur_h < min_aspect:
        target_w = min(cur_w, size["min_width"])
        box = _to_preferred(_to_aspect(box, width, height, target_w, int(target_w / min_aspect)), preferred)
    elif cur_w / cur_h > max_aspect:
        target_h = min(cur_h, size["max_height"])
        box = _to_preferred(_to_aspect(box, width, height, int(target_h * max_aspect), target_h), preferred)
    x_size, y_size = box[1] - box[0] + 1, box[3] - box[2] + 1
    upper = min(size["max_width"] / x_size, size["max_height"] / y_size)
    lower = min(size["min_width"] / x_size, size["min_height"] / y_size)
    return box, max(lower, upper)


def crop_one(
    image: torch.Tensor, mask: torch.Tensor, context: torch.Tensor | None, o: dict[str, Any]
) -> tuple[dict[str, Any], torch.Tensor, torch.Tensor]:
    """One image (1, H, W, C) and mask (1, H, W): the stitch record, cropped image and cropped mask."""
    import torch

    if mask.shape[1:] != image.shape[1:3]:
        if torch.count_nonzero(mask[0]):
            raise InvalidInput("InpaintCrop: the mask must be the size of the image")
        mask = torch.zeros_like(image[..., 0])
    if o["fill_mask_holes"]:
        mask = _fill_holes(mask)
    mask = grow_and_blur(mask, o["blur_mask_pixels"])
    if o["invert_mask"]:
        mask = 1.0 - mask
    if context is None or (context.shape[1:] != image.shape[1:3] and not torch.count_nonzero(context[0])):
        context = mask
    elif context.shape[1:] != image.shape[1:3]:
        raise InvalidInput("InpaintCrop: the context mask must be the size of the image")
    else:
        context = torch.clamp(context + mask, 0.0, 1.0)
    _, h, w, c = image.shape
    top, left = (w + 1) // 2, (h + 1) // 2  # the pack widens by half the *other* side: a square canvas
    canvas_h, canvas_w = h + 2 * top, w + 2 * left
    big = torch.zeros((1, canvas_h, canvas_w, c), dtype=image.dtype)
    big[:, top : top + h, left : left + w] = image
    _mirror(big, top, left, h, w)
    big_mask = torch.ones((1, canvas_h, canvas_w), dtype=mask.dtype)
    big_mask[:, top : top + h, left : left + w] = mask
    blend = torch.zeros((1, canvas_h, canvas_w), dtype=mask.dtype)
    blend[:, top : top + h, left : left + w] = mask
    _mirror(blend, top, left, h, w)
    big_context = torch.zeros((1, canvas_h, canvas_w), dtype=context.dtype)
    big_context[:, top : top + h, left : left + w] = context
    if not torch.count_nonzero(big_context[0]):
        big_context[:, top : top + h, left : left + w] = 1.0
    box = _context_box(
        big_context, (o["context_expand_factor"], o["context_expand_pixels"], o["blend_pixels"])
    )
    width, height = canvas_w, canvas_h
    size = {k: o[k] for k in ("min_width", "max_width", "min_height", "max_height")}
    if o["mode"] == "forced size":
        size = {
            "min_width": o["force_width"],
            "max_width": o["force_width"],
            "min_height": o["force_height"],
            "max_height": o["force_height"],
        }
    factor = o["rescale_factor"]
    if o["mode"] != "free size":
        if size["max_width"] < size["min_width"] or size["max_height"] < size["min_height"]:
            raise InvalidInput("InpaintCrop: max_width/max_height must be at least min_width/min_height")
        box, factor = _fit_ranged(box, size, (width, height), (left, left + w, top, top + h))
    scale_x = scale_y = 1.0
    original = big
    if factor < 0.999 or factor > 1.001:
        width, height = round(canvas_w * factor), round(canvas_h * factor)
        _check_room(width, height, c)
        big = rescale(big.permute(0, 3, 1, 2), width, height, o["rescale_algorithm"]).permute(0, 2, 3, 1)
        big_mask = rescale(big_mask[:, None], width, height, "nearest")[:, 0]
        blend = rescale(blend[:, None], width, height, "nearest")[:, 0]
        scale_x, scale_y = width / canvas_w, height / canvas_h
        x_size, y_size = box[1] - box[0] + 1, box[3] - box[2] + 1
        box[0], box[2] = round(box[0] * scale_x), round(box[2] * scale_y)
        box[1], box[3] = box[0] + int(x_size * scale_x), box[2] + int(y_size * scale_y)
    x_min, x_max, y_min, y_max = box
    if o["mode"] != "free size":
        x_size, y_size = x_max - x_min + 1, y_max - y_min + 1
        if x_size < size["min_width"]:
            x_max = min(x_max + (size["min_width"] - x_size), width - 1)
        elif x_size > size["max_width"]:
            x_max = x_min + size["max_width"] - 1
        if y_size < size["min_height"]:
            y_max = min(y_max + (size["min_height"] - y_size), height - 1)
        elif y_size > size["max_height"]:
            y_max = y_min + size["max_height"] - 1
    if o["mode"] != "forced size" and o["padding"] > 1:
        x_min, x_max = _pad_range(x_min, x_max, width, o["padding"])
        y_min, y_max = _pad_range(y_min, y_max, height, o["padding"])
    x_min, x_max, y_min, y_max = max(x_min, 0), min(x_max, width - 1), max(y_min, 0), min(y_max, height - 1)
    cropped_blend = grow_and_blur(blend[:, y_min : y_max + 1, x_min : x_max + 1], o["blend_pixels"])
    stitch = {
        "x": x_min,
        "y": y_min,
        "original_image": original,
        "cropped_mask_blend": cropped_blend,
        "rescale_x": scale_x,
        "rescale_y": scale_y,
        "start_x": left,
        "start_y": top,
        "initial_width": w,
        "initial_height": h,
    }
    return (
        stitch,
        big[:, y_min : y_max + 1, x_min : x_max + 1],
        big_mask[:, y_min : y_max + 1, x_min : x_max + 1],
    )


def _composite(
    destination: torch.Tensor, source: torch.Tensor, x: int, y: int, mask: torch.Tensor
) -> torch.Tensor:
    """``source`` (1, C, h, w) blended into ``destination`` at (x, y) through ``mask`` (ComfyUI)."""
    import torch

    x = max(-source.shape[3], min(x, destination.shape[3]))
    y = max(-source.shape[2], min(y, destination.shape[2]))
    left, top = x, y
    right, bottom = left + source.shape[3], top + source.shape[2]
    mask = mask.reshape((-1, 1, *mask.shape[-2:]))
    mask = torch.nn.functional.interpolate(mask, size=tuple(source.shape[2:]), mode="bilinear")
    visible_w, visible_h = destination.shape[3] - left + min(0, x), destination.shape[2] - top + min(0, y)
    mask = mask[:, :, :visible_h, :visible_w]
    part = (
        mask * source[:, :, :visible_h, :visible_w] + (1 - mask) * destination[:, :, top:bottom, left:right]
    )
    destination[:, :, top:bottom, left:right] = part
    return destination


def stitch_one(stitch: dict[str, Any], inpainted: torch.Tensor, algorithm: str) -> torch.Tensor:
    """The inpainted crop (1, h, w, C) put back into the original image (the pack's stitch)."""
    import torch

    blend, x, y = stitch["cropped_mask_blend"], stitch["x"], stitch["y"]
    if not (0.999 <= stitch["rescale_x"] <= 1.001 and 0.999 <= stitch["rescale_y"] <= 1.001):
        width = math.ceil(inpainted.shape[2] / stitch["rescale_x"]) + 1
        height = math.ceil(inpainted.shape[1] / stitch["rescale_y"]) + 1
        x, y = math.floor(x / stitch["rescale_x"]), math.floor(y / stitch["rescale_y"])
        inpainted = rescale(inpainted.permute(0, 3, 1, 2), width, height, algorithm).permute(0, 2, 3, 1)
        # the pack's ``movedim(-1, 1)`` on the 3-D blend mask swaps its sides; kept for identical output
        blend = rescale(blend.movedim(-1, 1)[None], width, height, algorithm)[0].movedim(1, -1)
        blend = torch.clamp(blend, 0.0, 1.0)
    canvas = stitch["original_image"].clone().permute(0, 3, 1, 2)
    out = _composite(canvas, inpainted.permute(0, 3, 1, 2)[:, : canvas.shape[1]], x, y, blend).permute(
        0, 2, 3, 1
    )
    top, left = stitch["start_y"], stitch["start_x"]
    return out[:, top : top + stitch["initial_height"], left : left + stitch["initial_width"]]


def _options(raw: dict[str, Any]) -> dict[str, Any]:
    from visionatrix.engine.nodes.vix_inputs import as_bool

    o: dict[str, Any] = {}
    for name in ("fill_mask_holes", "invert_mask"):
        o[name] = as_bool(raw[name], name)
    for name, low in (
        ("context_expand_factor", 1.0),
        ("blur_mask_pixels", 0.0),
        ("blend_pixels", 0.0),
        ("rescale_factor", 0.01),
    ):
        o[name] = float(raw[name])
        if not (math.isfinite(o[name]) and o[name] >= low):
            raise InvalidInput(f"InpaintCrop: {name} must be at least {low}, got {raw[name]!r}")
    for name in (
        "context_expand_pixels",
        "force_width",
        "force_height",
        "min_width",
        "min_height",
        "max_width",
        "max_height",
    ):
        o[name] = int(raw[name])
        if not 0 <= o[name] <= 16384:
            raise InvalidInput(f"InpaintCrop: {name} must be in 0..16384, got {raw[name]!r}")
    o["padding"] = int(raw["padding"])
    for name, value, allowed in (
        ("mode", raw["mode"], MODES),
        ("rescale_algorithm", raw["rescale_algorithm"], ALGORITHMS),
        ("padding", o["padding"], PADDINGS),
    ):
        if value not in allowed:
            raise InvalidInput(f"InpaintCrop: {name} {value!r} is not one of {list(allowed)}")
        o[name] = value
    return o


@node("InpaintCrop")
class InpaintCrop:
    def run(
        self,
        ctx: NodeContext,
        image: Any,
        mask: Any,
        context_expand_pixels: int = 20,
        context_expand_factor: float = 1.0,
        fill_mask_holes: bool = True,
        blur_mask_pixels: float = 16.0,
        invert_mask: bool = False,
        blend_pixels: float = 16.0,
        rescale_algorithm: str = "bicubic",
        mode: str = "ranged size",
        force_width: int = 1024,
        force_height: int = 1024,
        rescale_factor: float = 1.0,
        min_width: int = 512,
        min_height: int = 512,
        max_width: int = 768,
        max_height: int = 768,
        padding: int = 32,
        optional_context_mask: Any = None,
    ) -> tuple[dict[str, list[Any]], np.ndarray, np.ndarray]:
        import torch

        o = _options(locals())
        images = torch.from_numpy(as_image_batch(image).copy())
        masks = as_mask(mask)
        context = (
            None if optional_context_mask is None else as_mask(optional_context_mask, "optional_context_mask")
        )
        if images.shape[0] > 1 and o["mode"] != "forced size":
            raise InvalidInput("InpaintCrop: mode must be 'forced size' for a batch of images")
        if masks.shape[0] != images.shape[0] or (context is not None and context.shape[0] != images.shape[0]):
            raise InvalidInput("InpaintCrop: image, mask and context mask batches must be the same size")
        stitches: dict[str, list[Any]] = {}
        crops, crop_masks = [], []
        for b in range(images.shape[0]):
            ctx.check_cancel()
            one_context = None if context is None else context[b : b + 1]
            stitch, crop, crop_mask = crop_one(images[b : b + 1], masks[b : b + 1], one_context, o)
            for key, value in stitch.items():
                stitches.setdefault(key, []).append(value)
            crops.append(crop[0])
            crop_masks.append(crop_mask[0])
        return stitches, torch.stack(crops).numpy(), torch.stack(crop_masks).numpy()


@node("InpaintStitch")
class InpaintStitch:
    def run(
        self,
        ctx: NodeContext,
        stitch: dict[str, list[Any]],
        inpainted_image: Any,
        rescale_algorithm: str = "bislerp",
    ) -> tuple[np.ndarray]:
        import torch

        if rescale_algorithm not in ALGORITHMS:
            raise InvalidInput(
                f"InpaintStitch: rescale_algorithm {rescale_algorithm!r} is not one of {list(ALGORITHMS)}"
            )
        images = torch.from_numpy(as_image_batch(inpainted_image, "inpainted_image").copy())
        if len(stitch.get("x", ())) != images.shape[0]:
            raise InvalidInput("InpaintStitch: the stitch does not match the inpainted image batch")
        out = []
        for b in range(images.shape[0]):
            one = {key: values[b] for key, values in stitch.items()}
            out.append(stitch_one(one, images[b : b + 1], rescale_algorithm)[0])
        return (torch.stack(out).numpy(),)
