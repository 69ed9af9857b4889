"""Modulated deformable convolution (DCNv2) forward, the op BiRefNet's decoder is built on.

``deform_conv2d`` uses ``torchvision.ops.deform_conv2d`` when torchvision imports and has a
kernel for the dtype (its CPU kernel has none for bfloat16), else ``deform_conv2d_pure``.

The pure version is written for speed on CPU, where it carries much of BiRefNet's decoder:

- bilinear sampling is one fused gather-and-weight: ``embedding_bag`` in ``sum`` mode with
  per-sample weights, over a zero-bordered channels-last copy of the input, each sample
  being a bag of its four neighbouring pixels;
- the convolution is then one matmul of those columns with the kernel, written straight
  into a channels-last output;
- output rows go in chunks so the column buffer stays cache-sized.

It computes in the input's dtype (bf16 works); sampling positions are float32 so large
offsets keep sub-pixel precision. Channels-last offset and mask tensors (what a conv on a
channels-last input returns) are read without a layout copy.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# Samples (output pixels x kernel taps) gathered per chunk: 32-64 MB of columns at 64 channels
# (bf16-fp32); larger chunks mean fewer calls, which matters most on a busy machine.
_CHUNK_SAMPLES = 1 << 18
# Table row numbers below this are exact in float32, so indices can be computed in float.
_FLOAT_EXACT_ROWS = 1 << 24


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
        return tv_op(x, offset, weight, bias, stride=stride, padding=padding, dilation=dilation, mask=mask)
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
    """Plain-PyTorch DCNv2 forward; same result as torchvision's within float rounding.

    Returns (B, C_out, H_out, W_out) in channels-last memory.
    """
    batch, channels, height, width = x.shape
    out_channels, in_per_group, kh, kw = weight.shape
    if in_per_group != channels:
        raise ValueError(f"deform_conv2d_pure: grouped kernels are not supported ({tuple(weight.shape)})")
    out_h = (height + 2 * padding - dilation * (kh - 1) - 1) // stride + 1
    out_w = (width + 2 * padding - dilation * (kw - 1) - 1) // stride + 1
    taps = kh * kw
    if tuple(offset.shape) != (batch, 2 * taps, out_h, out_w):
        raise ValueError(f"deform_conv2d_pure: offset {tuple(offset.shape)} for {taps} taps, {out_h}x{out_w}")

    sampler = _Sampler(x, kh, kw, stride, padding, dilation)
    # (tap, channel) column order, matching the (pixel, tap, channel) layout of the samples
    kernel = weight.permute(2, 3, 1, 0).reshape(taps * channels, out_channels).to(x.dtype)
    bias = None if bias is None else bias.to(x.dtype)
    out = torch.empty(batch, out_h, out_w, out_channels, dtype=x.dtype, device=x.device)
    offset_hwc = offset.permute(0, 2, 3, 1)  # a view; contiguous for channels-last offsets
    mask_hwc = None if mask is None else mask.permute(0, 2, 3, 1)
    rows_per_chunk = max(1, _CHUNK_SAMPLES // max(1, out_w * taps))
    for b in range(batch):
        for top in range(0, out_h, rows_per_chunk):
            rows = slice(top, min(out_h, top + rows_per_chunk))
            chunk_mask = None if mask_hwc is None else mask_hwc[b, rows]
            cols = sampler.columns(b, top, offset_hwc[b, rows], chunk_mask)
            dest = out[b, rows].view(-1, out_channels)
            if bias is None:
                torch.mm(cols, kernel, out=dest)
            else:
                torch.addmm(bias, cols, kernel, out=dest)
    return out.permute(0, 3, 1, 2)


class _Sampler:
    """Bilinear samples of one input at deformed kernel positions, as matmul-ready columns.

    The input is copied once, channels-last, with a zero border (1 pixel top/left, 2
    bottom/right). A sampling position clamped into [-1, H] x [-1, W] then reads exactly what
    torchvision's kernel computes: positions at or beyond -1 / H only touch border rows,
    which are zero, and positions inside need no bounds test at all.
    """

    def __init__(self, x: Tensor, kh: int, kw: int, stride: int, padding: int, dilation: int) -> None:
        batch, channels, height, width = x.shape
        self.height, self.width, self.channels = height, width, channels
        self.stride, self.padding = stride, padding
        self.pitch = width + 3
        self.image_rows = (height + 3) * self.pitch
        padded = F.pad(x, (1, 2, 1, 2))
        self.table = padded.permute(0, 2, 3, 1).reshape(-1, channels)
        dev = x.device
        self.tap_y = (torch.arange(kh, device=dev) * dilation).repeat_interleave(kw).float()
        self.tap_x = (torch.arange(kw, device=dev) * dilation).repeat(kh).float()
        # table rows of the four neighbours relative to the top-left one
        self.index_dtype = torch.int32 if batch * self.image_rows < _FLOAT_EXACT_ROWS else torch.int64
        self.corners = torch.tensor([0, 1, self.pitch, self.pitch + 1], device=dev, dtype=self.index_dtype)

    def columns(self, b: int, top: int, offset: Tensor, mask: Tensor | None) -> Tensor:
        """offset (rows, W_out, 2 * taps) as (dy, dx) pairs; mask (rows, W_out, taps) or None."""
        rows, cols, _ = offset.shape
        taps = self.tap_y.numel()
        off = offset.float().contiguous().view(rows, cols, taps, 2)
        dev = off.device
        oy = torch.arange(top, top + rows, device=dev).float() * self.stride - self.padding
        ox = torch.arange(cols, device=dev).float() * self.stride - self.padding
        py = (off[..., 0] + (oy.view(rows, 1, 1) + self.tap_y)).clamp_(-1, self.height)
        px = (off[..., 1] + (ox.view(1, cols, 1) + self.tap_x)).clamp_(-1, self.width)
        # a NaN offset samples nothing (an index from it would be garbage)
        py, px = py.nan_to_num_(nan=-1.0), px.nan_to_num_(nan=-1.0)
        y0, x0 = py.floor(), px.floor()
        ly, lx = py.sub_(y0), px.sub_(x0)
        # weights of the (top, bottom) rows times (left, right) columns -> the four corners
        if mask is None:
            wy = torch.stack((1 - ly, ly), dim=-1)
        else:
            m = mask.float().contiguous()
            mly = m * ly
            wy = torch.stack((m - mly, mly), dim=-1)
        wx = torch.stack((1 - lx, lx), dim=-1)
        weights = (wy.unsqueeze(-1) * wx.unsqueeze(-2)).view(-1, 4)
        # top-left neighbour's row in the table: padded (y0 + 1, x0 + 1) of image b
        start = self.pitch + 1 + b * self.image_rows
        if self.index_dtype == torch.int32:  # row numbers are exact in float32
            first = x0.add_(y0, alpha=self.pitch).add_(start).to(torch.int32)
        else:
            first = x0.long() + y0.long() * self.pitch + start
        index = first.view(-1, 1) + self.corners
        samples = F.embedding_bag(
            index, self.table, mode="sum", per_sample_weights=weights.to(self.table.dtype)
        )
        return samples.view(rows * cols, taps * self.channels)


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

    def forward(self, x: Tensor, weight: Tensor | None = None, bias: Tensor | None = None) -> Tensor:
        """``weight``/``bias`` replace the regular conv's (a caller folding a norm into it)."""
        taps = self.modulator_conv.out_channels
        # one conv for offsets and modulator: the input is read once
        both = F.conv2d(
            x,
            torch.cat((self.offset_conv.weight, self.modulator_conv.weight)),
            torch.cat((self.offset_conv.bias, self.modulator_conv.bias)),
            padding=self.padding,
        )
        offset, modulator = both[:, : 2 * taps], 2.0 * torch.sigmoid(both[:, 2 * taps :])
        return deform_conv2d(
            x,
            offset,
            modulator,
            self.regular_conv.weight if weight is None else weight,
            self.regular_conv.bias if weight is None else bias,
            padding=self.padding,
            prefer_pure=self.prefer_pure,
        )
