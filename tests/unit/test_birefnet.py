"""BiRefNet: deformable conv numerics, strict loading of the real layout, the nodes end to end."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from PIL import Image  # noqa: E402

from tests.support import FIXTURES as SHARED_FIXTURES  # noqa: E402
from visionatrix.engine.context import NodeContext, RunEnv  # noqa: E402
from visionatrix.engine.nets import deform_conv  # noqa: E402
from visionatrix.engine.nets.birefnet import (  # noqa: E402
    GENERAL,
    LITE,
    BiRefNet,
    birefnet_from_state_dict,
    config_from_state_dict,
    load_birefnet,
    predict_alpha,
)
from visionatrix.engine.nets.deform_conv import deform_conv2d, deform_conv2d_pure  # noqa: E402
from visionatrix.engine.nets.swin import relative_position_index  # noqa: E402
from visionatrix.engine.nodes.birefnet import LoadRembgByBiRefNetModel, RembgByBiRefNet  # noqa: E402
from visionatrix.errors import InvalidInput, ModelMissing  # noqa: E402
from visionatrix.models.cache import ModelStore  # noqa: E402
from visionatrix.testing.tiny_birefnet import write_tiny_birefnet  # noqa: E402

pytestmark = pytest.mark.models

FIXTURES = SHARED_FIXTURES if SHARED_FIXTURES.is_dir() else None
MANIFESTS = {
    "general": ("birefnet_general.state_dict.json", GENERAL),
    "lite": ("birefnet_lite.state_dict.json", LITE),
}
FLOWS = {"general": "remove_background_birefnet.json", "lite": "remove_background_birefnet_lite.json"}


def manifest(variant: str) -> dict[str, list[int]]:
    if FIXTURES is None:
        pytest.skip("shared fixtures (tensor-layout manifests) are not on this machine")
    path = FIXTURES / "birefnet" / MANIFESTS[variant][0]
    return json.loads(path.read_text())["tensors"]


def meta_state_dict(variant: str) -> dict[str, Any]:
    """The real layout as shape-only tensors: enough to check names and shapes for free."""
    return {k: torch.empty(shape, device="meta") for k, shape in manifest(variant).items()}


# ------------------------------------------------------------------------- deformable conv


def reference_deform_conv(x, offset, mask, weight, bias, stride, padding, dilation):  # type: ignore[no-untyped-def]
    """DCNv2 written the obvious way: one output pixel, one tap, one channel at a time (float64)."""
    batch, channels, height, width = x.shape
    out_channels, _, kh, kw = weight.shape
    out_h = (height + 2 * padding - dilation * (kh - 1) - 1) // stride + 1
    out_w = (width + 2 * padding - dilation * (kw - 1) - 1) // stride + 1
    x = x.double()
    out = torch.zeros(batch, out_channels, out_h, out_w, dtype=torch.float64)

    def pixel(b: int, c: int, y: int, xx: int) -> float:
        inside = 0 <= y < height and 0 <= xx < width
        return float(x[b, c, y, xx]) if inside else 0.0

    for b in range(batch):
        for oy in range(out_h):
            for ox in range(out_w):
                column = torch.zeros(channels, kh, kw, dtype=torch.float64)
                for i in range(kh):
                    for j in range(kw):
                        k = i * kw + j
                        y = oy * stride - padding + i * dilation + float(offset[b, 2 * k, oy, ox])
                        xx = ox * stride - padding + j * dilation + float(offset[b, 2 * k + 1, oy, ox])
                        if not (-1 < y < height and -1 < xx < width):
                            continue
                        y0, x0 = math.floor(y), math.floor(xx)
                        ly, lx = y - y0, xx - x0
                        m = 1.0 if mask is None else float(mask[b, k, oy, ox])
                        for c in range(channels):
                            value = (
                                (1 - ly) * (1 - lx) * pixel(b, c, y0, x0)
                                + (1 - ly) * lx * pixel(b, c, y0, x0 + 1)
                                + ly * (1 - lx) * pixel(b, c, y0 + 1, x0)
                                + ly * lx * pixel(b, c, y0 + 1, x0 + 1)
                            )
                            column[c, i, j] = m * value
                out[b, :, oy, ox] = weight.double().reshape(out_channels, -1) @ column.reshape(-1)
                if bias is not None:
                    out[b, :, oy, ox] += bias.double()
    return out


def random_deform_inputs(batch, channels, size, kernel, stride, padding, dilation, spread=3.0, seed=0):  # type: ignore[no-untyped-def]
    g = torch.Generator().manual_seed(seed)
    h, w = size
    out_h = (h + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    out_w = (w + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    taps = kernel * kernel
    x = torch.randn(batch, channels, h, w, generator=g)
    # offsets big enough that many samples fall partly or wholly outside the image
    offset = torch.randn(batch, 2 * taps, out_h, out_w, generator=g) * spread
    mask = torch.rand(batch, taps, out_h, out_w, generator=g) * 2
    weight = torch.randn(5, channels, kernel, kernel, generator=g)
    bias = torch.randn(5, generator=g)
    return x, offset, mask, weight, bias


@pytest.mark.parametrize(
    ("kernel", "stride", "padding", "dilation", "use_bias", "use_mask"),
    [
        (3, 1, 1, 1, False, True),
        (1, 1, 0, 1, True, True),
        (7, 1, 3, 1, False, True),
        (3, 2, 2, 2, True, False),
    ],
)
def test_pure_deform_conv_matches_reference(kernel, stride, padding, dilation, use_bias, use_mask) -> None:  # type: ignore[no-untyped-def]
    x, offset, mask, weight, bias = random_deform_inputs(2, 3, (6, 7), kernel, stride, padding, dilation)
    mask = mask if use_mask else None
    bias = bias if use_bias else None
    expected = reference_deform_conv(x, offset, mask, weight, bias, stride, padding, dilation)
    got = deform_conv2d_pure(x, offset, mask, weight, bias, stride, padding, dilation)
    assert got.shape == expected.shape
    torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-4)


def test_pure_deform_conv_in_bfloat16_stays_close() -> None:
    x, offset, mask, weight, _ = random_deform_inputs(1, 8, (9, 9), 3, 1, 1, 1, spread=1.5, seed=1)
    expected = reference_deform_conv(x, offset, mask, weight, None, 1, 1, 1)
    got = deform_conv2d_pure(*(t.bfloat16() for t in (x, offset, mask, weight)), None, 1, 1, 1)
    assert got.dtype == torch.bfloat16
    # bf16 keeps ~3 significant digits; the error is relative to the size of the outputs
    error = (got.double() - expected).abs().mean() / expected.abs().mean()
    assert error < 0.02


def test_zero_offsets_and_unit_mask_are_a_plain_convolution() -> None:
    x, offset, mask, weight, bias = random_deform_inputs(1, 4, (12, 10), 3, 1, 1, 1)
    got = deform_conv2d_pure(x, torch.zeros_like(offset), torch.ones_like(mask), weight, bias, 1, 1, 1)
    torch.testing.assert_close(
        got, torch.nn.functional.conv2d(x, weight, bias, padding=1), rtol=1e-5, atol=1e-4
    )


def test_large_inputs_are_processed_in_chunks_without_seams(monkeypatch: pytest.MonkeyPatch) -> None:
    # more samples than one chunk holds: rows of different chunks must agree with a single pass
    x, offset, mask, weight, _ = random_deform_inputs(1, 4, (40, 33), 3, 1, 1, 1, seed=2)
    whole = deform_conv2d_pure(x, offset, mask, weight, None, 1, 1, 1)
    monkeypatch.setattr(deform_conv, "_CHUNK_SAMPLES", 3 * 33 * 9)  # three output rows per chunk
    torch.testing.assert_close(deform_conv2d_pure(x, offset, mask, weight, None, 1, 1, 1), whole)


def test_wide_row_numbers_take_the_integer_index_path(monkeypatch: pytest.MonkeyPatch) -> None:
    # inputs too big for float32 row numbers index with int64: same result
    x, offset, mask, weight, bias = random_deform_inputs(2, 3, (6, 7), 3, 1, 1, 1, seed=4)
    expected = reference_deform_conv(x, offset, mask, weight, bias, 1, 1, 1)
    monkeypatch.setattr(deform_conv, "_FLOAT_EXACT_ROWS", 1)
    got = deform_conv2d_pure(x, offset, mask, weight, bias, 1, 1, 1)
    torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-4)


def test_nan_offsets_sample_zero_instead_of_crashing() -> None:
    x, offset, mask, weight, _ = random_deform_inputs(1, 2, (5, 5), 3, 1, 1, 1, seed=5)
    offset[0, :, 2, 2] = float("nan")
    expected = reference_deform_conv(x, offset.nan_to_num(nan=-10.0), mask, weight, None, 1, 1, 1)
    got = deform_conv2d_pure(x, offset, mask, weight, None, 1, 1, 1)
    torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-4)


def test_dispatcher_without_torchvision_uses_the_pure_version() -> None:
    x, offset, mask, weight, bias = random_deform_inputs(1, 3, (6, 6), 3, 1, 1, 1, seed=6)
    expected = reference_deform_conv(x, offset, mask, weight, bias, 1, 1, 1)
    for prefer_pure in (False, True):  # torchvision, where it imports, must agree too
        got = deform_conv2d(x, offset, mask, weight, bias, padding=1, prefer_pure=prefer_pure)
        torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-4)


# ------------------------------------------------------------------------------- loading


@pytest.mark.parametrize("variant", ["general", "lite"])
def test_config_is_read_from_the_real_layout(variant: str) -> None:
    assert config_from_state_dict(meta_state_dict(variant)) == MANIFESTS[variant][1]


@pytest.mark.parametrize("variant", ["general", "lite"])
def test_model_has_exactly_the_real_tensor_names_and_shapes(variant: str) -> None:
    with torch.device("meta"):
        model = BiRefNet(MANIFESTS[variant][1])
    assert {k: list(v.shape) for k, v in model.state_dict().items()} == manifest(variant)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda sd: sd.pop("decoder.gdt_convs_attn_2.0.bias"),
            "missing (1): decoder.gdt_convs_attn_2.0.bias",
        ),
        (
            lambda sd: sd.__setitem__("decoder.extra.weight", torch.empty(3, device="meta")),
            "unexpected (1): decoder.extra.weight",
        ),
        (
            lambda sd: sd.__setitem__("decoder.conv_out1.0.weight", torch.empty(1, 99, 1, 1, device="meta")),
            "wrong shape (1): decoder.conv_out1.0.weight (1, 99, 1, 1) (expected (1, 240, 1, 1))",
        ),
    ],
    ids=["missing", "unexpected", "wrong-shape"],
)
def test_loading_names_what_does_not_match(change, message) -> None:  # type: ignore[no-untyped-def]
    sd = meta_state_dict("general")
    change(sd)
    with pytest.raises(InvalidInput) as err:
        birefnet_from_state_dict(sd, source="General.safetensors")
    assert "General.safetensors does not match the BiRefNet layout" in str(err.value)
    assert message in str(err.value)


def test_a_file_of_another_model_is_refused_by_name() -> None:
    sd = {"model.diffusion_model.input_blocks.0.0.weight": torch.empty(320, 4, 3, 3, device="meta")}
    with pytest.raises(InvalidInput, match="x.safetensors: not a BiRefNet checkpoint"):
        birefnet_from_state_dict(sd, source="x.safetensors")


def random_full_state_dict(variant: str) -> dict[str, Any]:
    """Random values in every tensor of the real layout (full size), at sane scales."""
    g = torch.Generator().manual_seed(0)
    sd: dict[str, Any] = {}
    for name, shape in manifest(variant).items():
        if name.endswith("relative_position_index"):
            sd[name] = relative_position_index(math.isqrt(shape[0]))  # a window of N = w * w tokens
        elif name.endswith("num_batches_tracked"):
            sd[name] = torch.tensor(0)
        elif name.endswith("running_var"):
            sd[name] = torch.rand(shape, generator=g) + 0.5
        else:
            sd[name] = torch.randn(shape, generator=g) * 0.02
    return sd


@pytest.mark.parametrize("variant", ["lite", "general"])
def test_full_size_random_weights_load_strictly_and_run(variant: str) -> None:
    # general: 220 M values (~0.9 GB in float32), a 256x256 forward takes a few seconds
    model = birefnet_from_state_dict(random_full_state_dict(variant))
    assert model.config == MANIFESTS[variant][1]
    with torch.inference_mode():
        logits = model(torch.randn(1, 3, 256, 256))
    assert logits.shape == (1, 1, 256, 256)
    assert torch.isfinite(logits).all()


def test_input_sides_must_be_multiples_of_32(tmp_path: Path) -> None:
    model = load_birefnet(write_tiny_birefnet(tmp_path / "t.safetensors", "lite"))
    with pytest.raises(ValueError, match="multiples of 32"), torch.inference_mode():
        model(torch.zeros(1, 3, 80, 64))


# ------------------------------------------------- the forward pass against a literal one


def plain_aspp_branch(m: Any, x: Any) -> Any:
    dc = m.atrous_conv
    offset = dc.offset_conv(x)
    modulator = 2.0 * torch.sigmoid(dc.modulator_conv(x))
    y = deform_conv2d_pure(x, offset, modulator, dc.regular_conv.weight, None, 1, dc.padding, 1)
    return F.relu(m.bn(y))


def plain_dec_block(blk: Any, x: Any) -> Any:
    """The reference's BasicDecBlk and ASPPDeformable, step by step: cat, conv, BN, ReLU."""
    x = F.relu(blk.bn_in(blk.conv_in(x)))
    att = blk.dec_att
    branches = [plain_aspp_branch(att.aspp1, x)] + [plain_aspp_branch(m, x) for m in att.aspp_deforms]
    pooled = F.interpolate(att.global_avg_pool(x), size=x.shape[2:], mode="bilinear", align_corners=True)
    x = F.relu(att.bn1(att.conv1(torch.cat([*branches, pooled], dim=1))))
    return blk.bn_out(blk.conv_out(x))


def patches(image: Any, ref: Any) -> Any:
    """einops 'b c (hg h) (wg w) -> b (c hg wg) h w' with hg, wg from ref's size."""
    b, c, height, width = image.shape
    h, w = ref.shape[2:]
    hg, wg = height // h, width // w
    return image.reshape(b, c, hg, h, wg, w).permute(0, 1, 2, 4, 3, 5).reshape(b, c * hg * wg, h, w)


def plain_forward(model: Any, x: Any) -> Any:
    """BiRefNet's forward as the reference writes it, on the same modules and weights."""
    up = partial(F.interpolate, mode="bilinear", align_corners=True)
    h, w = x.shape[2:]
    full, half = model.bb(x), model.bb(up(x, size=(h // 2, w // 2)))
    x1, x2, x3, x4 = (torch.cat([f, up(g, size=f.shape[2:])], dim=1) for f, g in zip(full, half, strict=True))
    x4 = torch.cat([up(x1, size=x4.shape[2:]), up(x2, size=x4.shape[2:]), up(x3, size=x4.shape[2:]), x4], 1)
    x4 = plain_dec_block(model.squeeze_module[0], x4)
    d = model.decoder
    p = x4
    for stage, lateral in ((4, x3), (3, x2), (2, x1)):
        p = torch.cat([p, getattr(d, f"ipt_blk{stage + 1}")(patches(x, p))], dim=1)
        p = plain_dec_block(getattr(d, f"decoder_block{stage}"), p)
        g = getattr(d, f"gdt_convs_{stage}")(p)
        p = p * torch.sigmoid(getattr(d, f"gdt_convs_attn_{stage}")(g))
        p = up(p, size=lateral.shape[2:]) + getattr(d, f"lateral_block{stage}")(lateral)
    p = torch.cat([p, d.ipt_blk2(patches(x, p))], dim=1)
    p = up(plain_dec_block(d.decoder_block1, p), size=x.shape[2:])
    p = torch.cat([p, d.ipt_blk1(patches(x, p))], dim=1)
    return d.conv_out1(p)


def randomise_batch_norms(model: Any, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.weight.copy_(1 + 0.3 * torch.randn(n, generator=g))
            m.bias.copy_(0.3 * torch.randn(n, generator=g))
            m.running_mean.copy_(0.3 * torch.randn(n, generator=g))
            m.running_var.copy_(0.5 + torch.rand(n, generator=g))


@pytest.mark.parametrize("variant", ["general", "lite"])
def test_forward_computes_the_reference_function(tmp_path: Path, variant: str) -> None:
    # the model folds batch norms, splits concatenations and reorders linear steps: exact
    # rewrites, so it must agree with the literal computation up to float rounding
    model = load_birefnet(write_tiny_birefnet(tmp_path / "m.safetensors", variant))
    with torch.inference_mode():
        randomise_batch_norms(model)
        x = torch.randn(1, 3, 128, 96, generator=torch.Generator().manual_seed(1))
        expected = plain_forward(model, x)
        got = model(x)
    assert got.shape == expected.shape == (1, 1, 128, 96)
    assert expected.std() > 0.01  # a real signal, not a constant
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4 * float(expected.abs().max()))


# ------------------------------------------------------------------------ tiny checkpoints


@pytest.mark.parametrize("variant", ["general", "lite"])
def test_tiny_checkpoint_has_the_real_names_and_loads_through_the_same_loader(
    tmp_path: Path, variant: str
) -> None:
    from safetensors import safe_open

    path = write_tiny_birefnet(tmp_path / f"{variant}.safetensors", variant)
    with safe_open(str(path), framework="pt") as f:
        assert set(f.keys()) == set(manifest(variant))
    model = load_birefnet(path)
    assert model.config.depths == MANIFESTS[variant][1].depths
    alpha = predict_alpha(model, torch.rand(1, 3, 50, 70), size=64)
    assert alpha.shape == (1, 50, 70)
    assert float(alpha.min()) >= 0.0 and float(alpha.max()) <= 1.0


def test_bfloat16_model_agrees_with_float32(tmp_path: Path) -> None:
    path = write_tiny_birefnet(tmp_path / "g.safetensors", "general")
    image = torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(3))
    full = predict_alpha(load_birefnet(path, dtype=torch.float32), image, size=128)
    half = predict_alpha(load_birefnet(path, dtype=torch.bfloat16), image, size=128)
    assert (full - half).abs().mean() < 0.01


# ------------------------------------------------------------------------------------ nodes


def make_env(tmp_path: Path, precision: str = "auto", size: int = 64) -> RunEnv:
    folders = {name: tmp_path / name for name in ("input", "output", "tmp", "models")}
    for folder in folders.values():
        folder.mkdir(exist_ok=True)
    return RunEnv(
        models=ModelStore(folders["models"], budget_bytes=1 << 30),
        input_dir=folders["input"],
        output_dir=folders["output"],
        tmp_dir=folders["tmp"],
        precision=precision,
        options={"birefnet_size": size},
    )


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_nodes_cut_out_an_rgba_image_of_the_input_size(tmp_path: Path, precision: str) -> None:
    env = make_env(tmp_path, precision)
    write_tiny_birefnet(tmp_path / "models" / "birefnet" / "General.safetensors", "general")
    ctx = NodeContext(env, "24", "LoadRembgByBiRefNetModel")
    (model,) = LoadRembgByBiRefNetModel().run(
        ctx, model="General.safetensors", device="AUTO", use_weight=False
    )
    assert next(model.parameters()).dtype == getattr(torch, precision)
    (again,) = LoadRembgByBiRefNetModel().run(
        ctx, model="General.safetensors", device="AUTO", use_weight=False
    )
    assert again is model  # cached between tasks

    images = np.random.default_rng(0).random((2, 37, 53, 3), dtype=np.float32)
    rgba, mask = RembgByBiRefNet().run(NodeContext(env, "23", "RembgByBiRefNet"), model=model, images=images)
    assert rgba.shape == (2, 37, 53, 4) and rgba.dtype == np.float32
    assert mask.shape == (2, 37, 53)
    np.testing.assert_array_equal(rgba[..., 3], mask)
    for image, cut, alpha in zip(images, rgba, mask, strict=True):
        rgb = torch.from_numpy(image).permute(2, 0, 1)[None]
        # the mask is the network's resized sigmoid as it is: no min-max stretch
        expected = predict_alpha(model, rgb, size=64)[0].numpy()
        np.testing.assert_allclose(alpha, expected, atol=1e-6 if precision == "float32" else 0)
        if precision == "float32":  # exactly the node pack's blur-fusion foreground, 8-bit
            np.testing.assert_array_equal(cut[..., :3], _reference_foreground(image, alpha))


def _cv2_blur(x: np.ndarray, r: int) -> np.ndarray:
    """OpenCV's documented box filter: mean over [i - r//2, i + r - 1 - r//2], BORDER_REFLECT_101."""

    def mirror(n: int) -> np.ndarray:
        p = np.arange(-(r // 2), n + r - r // 2 - 1)
        while ((p < 0) | (p >= n)).any():
            p = np.where(p < 0, -p, np.where(p >= n, 2 * n - 2 - p, p))
        return p

    h, w = x.shape[:2]
    rows, cols = mirror(h), mirror(w)
    padded = x[rows][:, cols]
    out = np.zeros_like(x)
    for dy in range(r):
        for dx in range(r):
            out += padded[dy : dy + h, dx : dx + w]
    return out / (r * r)


def _reference_foreground(image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """ComfyUI_BiRefNet_ll's refine_foreground_pil (Forte et al. blur fusion, radii 90 then 6), rewritten."""
    img = np.clip(255.0 * image, 0, 255).astype(np.uint8) / 255.0
    a = (np.clip(255.0 * alpha, 0, 255).astype(np.uint8) / 255.0)[:, :, None]

    def fuse(f: np.ndarray, b: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray]:
        blurred_a = _cv2_blur(a, r)
        blurred_f = _cv2_blur(f * a, r) / (blurred_a + 1e-5)
        blurred_b = _cv2_blur(b * (1 - a), r) / ((1 - blurred_a) + 1e-5)
        return np.clip(blurred_f + a * (img - a * blurred_f - (1 - a) * blurred_b), 0, 1), blurred_b

    f, b = fuse(img, img, 90)
    f, _ = fuse(f, b, 6)
    return (f * 255.0).astype(np.uint8).astype(np.float32) / 255.0


def test_foreground_estimate_removes_the_old_background_from_soft_edges() -> None:
    from visionatrix.engine.nets.foreground import estimate_foreground

    x = np.linspace(0, 1, 96, dtype=np.float32)
    alpha = np.clip((x - 0.35) * 4, 0, 1)[None, :].repeat(40, axis=0)  # a soft vertical edge
    red, blue = np.array([0.9, 0.1, 0.1], np.float32), np.array([0.1, 0.2, 0.9], np.float32)
    image = alpha[..., None] * red + (1 - alpha[..., None]) * blue
    fg = estimate_foreground(image, alpha)
    edge = (alpha > 0.2) & (alpha < 0.8)
    before = np.abs(image[edge] - red).mean()
    after = np.abs(fg[edge] - red).mean()
    assert after < before / 3, (before, after)  # the fringe pixels carry the object's colour


def test_missing_model_file_names_where_to_put_it(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    with pytest.raises(ModelMissing, match="General-Lite.safetensors"):
        LoadRembgByBiRefNetModel().run(NodeContext(env, "24", "x"), model="General-Lite.safetensors")


def test_input_size_option_must_suit_the_network(tmp_path: Path) -> None:
    env = make_env(tmp_path, size=100)
    model = load_birefnet(write_tiny_birefnet(tmp_path / "t.safetensors", "lite"))
    with pytest.raises(InvalidInput, match="birefnet_size=100"):
        RembgByBiRefNet().run(
            NodeContext(env, "23", "x"), model=model, images=np.zeros((1, 8, 8, 3), np.float32)
        )


@pytest.mark.parametrize("variant", ["general", "lite"])
def test_visionatrix_flow_runs_and_saves_a_transparent_png(tmp_path: Path, variant: str) -> None:
    from visionatrix.engine.executor import run_graph

    if FIXTURES is None:
        pytest.skip("shared fixtures (flows) are not on this machine")
    graph = json.loads((FIXTURES / "vixflows" / "flows" / FLOWS[variant]).read_text())
    env = make_env(tmp_path)
    model_file = graph["24"]["inputs"]["model"]
    write_tiny_birefnet(tmp_path / "models" / "birefnet" / model_file, variant)
    Image.fromarray(np.full((30, 44, 3), 200, np.uint8)).save(env.input_dir / "in.png")
    graph["2"]["inputs"]["image"] = "in.png"
    outputs = run_graph(graph, env)
    (saved,) = outputs["13"]
    with Image.open(saved) as image:
        assert image.mode == "RGBA" and image.size == (44, 30)


def test_node_module_imports_without_torch() -> None:
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import visionatrix.engine.nodes.birefnet as m\n"
        "assert m.RembgByBiRefNet.class_type == 'RembgByBiRefNet'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])
