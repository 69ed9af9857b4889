"""Modulated deformable convolution (DCNv2) forward, the op BiRefNet's decoder is built on.

``deform_conv2d`` uses ``torchvision.ops.deform_conv2d`` when torchvision imports and has a
kernel for the dtype (its CPU kernel has none for bfloat16), else ``deform_conv2d_pure``.

The pure version is written for speed on CPU, where it is most of BiRefNet's decoder time:
bilinear sampling is one fused gather-and-weight (``embedding_bag`` in ``sum`` mode with
per-sample weights over a zero-padded channels-last copy of the input: each sample is a bag
of its four neighbouring pixels), and the convolution is one matmul of the sampled columns
with the kernel. Output rows are processed in chunks so the column buffer stays cache-sized;
the result is channels-last. It computes in the input's dtype (bf16 works); sampling
coordinates are always float32 so large offsets keep sub-pixel precision.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# Samples (output pixels x kernel taps) gathered per chunk: ~8-16 MB of columns at 64 channels.
_CHUNK_SAMPLES = 1 << 17


def deform_conv2d(
    x: Tensor,
    offset: Tensor,
    mask: Tensor | None,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    prefer_pure: bool = False,
) -> Tensor:
    """DCNv2 forward with torchvision's argument meaning (one offset group)."""
    tv_op = None if prefer_pure else _torchvision_op()
    if tv_op is not None and (x.device.type != "cpu" or x.dtype in (torch.float32, torch.float64)):
        return tv_op(
            x, offset, weight, bias, stride=stride, padding=padding, dilation=dilation, mask=mask
        )
    return deform_conv2d_pure(x, offset, mask, weight, bias, stride, padding, dilation)


@functools.cache
def _torchvision_op():  # type: ignore[no-untyped-def]
    try:  # a torchvision built for another torch raises at import (not only ImportError)
        from torchvision.ops import deform_conv2d as op
    except Exception:
        return None
    return op


def deform_conv2d_pure(
    x: Tensor,
    offset: Tensor,
    mask: Tensor | None,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
) -> Tensor:
    """Plain-PyTorch DCNv2 forward; same result as torchvision's within float rounding."""
    batch, channels, height, width = x.shape
    out_channels, in_per_group, kh, kw = weight.shape
    taps = kh * kw
    if in_per_group != channels:
        raise ValueError(f"deform_conv2d_pure: grouped kernels are not supported ({weight.shape=})")
    out_h = (height + 2 * padding - dilation * (kh - 1) - 1) // stride + 1
    out_w = (width + 2 * padding - dilation * (kw - 1) - 1) // stride + 1
    if offset.shape != (batch, 2 * taps, out_h, out_w):
        raise ValueError(f"deform_conv2d_pure: offset {tuple(offset.shape)} for {taps} taps, {out_h}x{out_w}")

    table = _padded_rows(x)  # (B * (H+2) * (W+2), C)
    # (k, c) column order, matching the (pixel, tap, channel) layout of the gathered samples
    kernel = weight.permute(2, 3, 1, 0).reshape(taps * channels, out_channels).to(x.dtype)
    out = torch.empty(batch, out_h, out_w, out_channels, dtype=x.dtype, device=x.device)
    taps_y = (torch.arange(kh, device=x.device) * dilation).repeat_interleave(kw).float()
    taps_x = (torch.arange(kw, device=x.device) * dilation).repeat(kh).float()
    rows_per_chunk = max(1, _CHUNK_SAMPLES // max(1, out_w * taps))
    for b in range(batch):
        for row in range(0, out_h, rows_per_chunk):
            rows = slice(row, min(out_h, row + rows_per_chunk))
            geometry = _Geometry(height, width, stride, padding, taps_y, taps_x, b * (height + 2) * (width + 2))
            index, weights = geometry.sample_weights(offset[b, :, rows], None if mask is None else mask[b, :, rows], row)
            samples = F.embedding_bag(index, table, mode="sum", per_sample_weights=weights.to(x.dtype))
            cols = samples.view(-1, taps * channels)
            dest = out[b, rows].view(-1, out_channels)
            if bias is None:
                torch.mm(cols, kernel, out=dest)
            else:
                torch.addmm(bias.to(x.dtype), cols, kernel, out=dest)
    return out.permute(0, 3, 1, 2)


def _padded_rows(x: Tensor) -> Tensor:
    """``x`` with a one-pixel zero border, channels-last, one row per pixel."""
    padded = F.pad(x, (1, 1, 1, 1))
    return padded.permute(0, 2, 3, 1).reshape(-1, x.shape[1])


class _Geometry:
    """Where each (output pixel, tap) samples, as four row indices and bilinear weights."""

    def __init__(
        self, height: int, width: int, stride: int, padding: int, taps_y: Tensor, taps_x: Tensor, base: int
    ) -> None:
        self.height, self.width = height, width
        self.stride, self.padding = stride, padding
        self.taps_y, self.taps_x = taps_y, taps_x
        self.base = base  # first row of this image in the padded table

    def sample_weights(self, offset: Tensor, mask: Tensor | None, first_row: int) -> tuple[Tensor, Tensor]:
        taps = self.taps_y.numel()
        _, rows, cols = offset.shape
        dev = offset.device
        # offset channels are (dy, dx) per tap; move taps last: (rows, cols, taps)
        off = offset.float().view(taps, 2, rows, cols).permute(1, 2, 3, 0)
        oy = (torch.arange(first_row, first_row + rows, device=dev) * self.stride - self.padding).float()
        ox = (torch.arange(cols, device=dev) * self.stride - self.padding).float()
        py = off[0] + (oy.view(rows, 1, 1) + self.taps_y)
        px = off[1] + (ox.view(1, cols, 1) + self.taps_x.view(1, 1, taps))
        y0, x0 = py.floor(), px.floor()
        ly, lx = py - y0, px - x0
        # torchvision: a sample is zero unless -1 < y < H and -1 < x < W; neighbours outside
        # the image read the zero border of the padded table
        scale = ((py > -1) & (py < self.height) & (px > -1) & (px < self.width)).float()
        if mask is not None:
            scale = scale * mask.float().permute(1, 2, 0)
        hy, hx = 1 - ly, 1 - lx
        weights = torch.stack((hy * hx, hy * lx, ly * hx, ly * lx), dim=-1) * scale.unsqueeze(-1)
        pitch = self.width + 2
        iy = (y0 + 1).clamp_(0, self.height).to(torch.int64)
        ix = (x0 + 1).clamp_(0, self.width).to(torch.int64)
        top_left = iy * pitch + ix + self.base
        index = torch.stack((top_left, top_left + 1, top_left + pitch, top_left + pitch + 1), dim=-1)
        return index.view(-1, 4), weights.view(-1, 4)


class DeformableConv2d(nn.Module):
    """BiRefNet's deformable conv layer: offsets and a 2*sigmoid modulator from plain convs."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, padding: int) -> None:
        super().__init__()
        taps = kernel_size * kernel_size
        self.padding = padding
        self.offset_conv = nn.Conv2d(in_channels, 2 * taps, kernel_size, padding=padding)
        self.modulator_conv = nn.Conv2d(in_channels, taps, kernel_size, padding=padding)
        self.regular_conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding, bias=False)
        self.prefer_pure = False

    def forward(self, x: Tensor) -> Tensor:
        taps = self.modulator_conv.out_channels
        # one conv for offsets and modulator: the input is read once
        weight = torch.cat((self.offset_conv.weight, self.modulator_conv.weight))
        bias = torch.cat((self.offset_conv.bias, self.modulator_conv.bias))
        both = F.conv2d(x, weight, bias, padding=self.padding)
        offset, modulator = both[:, : 2 * taps], 2.0 * torch.sigmoid(both[:, 2 * taps :])
        return deform_conv2d(
            x, offset, modulator, self.regular_conv.weight, self.regular_conv.bias,
            padding=self.padding, prefer_pure=self.prefer_pure,
        )


def fan_in_std(module: nn.Module) -> float:
    """LeCun-normal standard deviation for a conv/linear weight (used by test initialisers)."""
    weight = module.weight  # type: ignore[union-attr]
    return 1.0 / math.sqrt(weight[0].numel())
