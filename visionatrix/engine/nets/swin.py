"""Swin Transformer v1 backbone (shifted-window attention), as BiRefNet uses it.

Parameter names follow the original Swin detection backbone (``patch_embed``, ``layers.i.blocks.j``,
``layers.i.downsample``, ``norm0..3``) so published BiRefNet weights load by name. Feature maps
stay channels-last (B, H, W, C) inside the stages; the four stage outputs are returned as NCHW
views of channels-last memory, which is what the convolutional decoder wants on CPU.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# Additive attention bias between tokens that a cyclic shift brought together from different
# image regions; large enough that softmax gives them no weight (the value the original uses).
_MASKED = -100.0


def relative_position_index(window: int) -> Tensor:
    """(N, N) index into the (2w-1)^2 bias table for each pair of tokens in a w x w window."""
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window - 1)
    return rel[..., 0] * (2 * window - 1) + rel[..., 1]


def window_partition(x: Tensor, window: int) -> Tensor:
    """(B, H, W, C) -> (B * windows, window * window, C); H and W are multiples of ``window``."""
    b, h, w, c = x.shape
    x = x.view(b, h // window, window, w // window, window, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, window * window, c)


def window_merge(windows: Tensor, window: int, h: int, w: int) -> Tensor:
    """Inverse of ``window_partition``."""
    c = windows.shape[-1]
    x = windows.view(-1, h // window, w // window, window, window, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, h, w, c)


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class WindowAttention(nn.Module):
    """Multi-head self-attention inside windows with a learned relative position bias."""

    def __init__(self, dim: int, window: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.window = window
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        self.register_buffer("relative_position_index", relative_position_index(window))
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def position_bias(self) -> Tensor:
        """(heads, N, N) bias added to the attention logits."""
        n = self.window * self.window
        index = self.relative_position_index.reshape(-1).long()
        return self.relative_position_bias_table[index].view(n, n, -1).permute(2, 0, 1)

    def forward(self, x: Tensor, bias: Tensor) -> Tensor:
        """x: (B_, N, C); bias broadcastable to (B_, heads, N, N)."""
        b, n, c = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype))
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class SwinTransformerBlock(nn.Module):
    def __init__(self, dim: int, heads: int, window: int, shift: int, mlp_hidden: int) -> None:
        super().__init__()
        self.window, self.shift = window, shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, mlp_hidden)

    def forward(self, x: Tensor, shift_mask: Tensor) -> Tensor:
        """x: (B, H, W, C). ``shift_mask``: (windows, N, N) for this stage's padded size."""
        b, h, w, c = x.shape
        ws = self.window
        y = self.norm1(x)
        pad_b, pad_r = (-h) % ws, (-w) % ws
        y = F.pad(y, (0, 0, 0, pad_r, 0, pad_b))  # zeros after the norm, as the original does
        hp, wp = h + pad_b, w + pad_r
        bias = self.attn.position_bias().unsqueeze(0)  # (1, heads, N, N)
        if self.shift:
            y = torch.roll(y, shifts=(-self.shift, -self.shift), dims=(1, 2))
            bias = bias + shift_mask.unsqueeze(1).to(bias.dtype)  # (windows, heads, N, N)
            if b > 1:
                bias = bias.repeat(b, 1, 1, 1)
        y = window_merge(self.attn(window_partition(y, ws), bias), ws, hp, wp)
        if self.shift:
            y = torch.roll(y, shifts=(self.shift, self.shift), dims=(1, 2))
        x = x + y[:, :h, :w]
        return x + self.mlp(self.norm2(x))


class PatchMerging(nn.Module):
    """2x2 neighbourhood -> one token with twice the channels."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        _, h, w, _ = x.shape
        x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
        x = torch.cat((x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]), dim=-1)
        return self.reduction(self.norm(x))


class BasicLayer(nn.Module):
    """One stage: blocks alternating plain and shifted windows, then optional downsampling."""

    def __init__(
        self, dim: int, depth: int, heads: int, window: int, mlp_hidden: int, downsample: bool
    ) -> None:
        super().__init__()
        self.window = window
        self.blocks = nn.ModuleList(
            SwinTransformerBlock(dim, heads, window, 0 if i % 2 == 0 else window // 2, mlp_hidden)
            for i in range(depth)
        )
        self.downsample = PatchMerging(dim) if downsample else None

    def shift_mask(self, h: int, w: int, device: torch.device) -> Tensor:
        """(windows, N, N): 0 between tokens of the same region after the cyclic shift, else masked."""
        ws, shift = self.window, self.window // 2
        hp, wp = -(-h // ws) * ws, -(-w // ws) * ws
        region = torch.zeros(1, hp, wp, 1, device=device)
        bounds = ((0, hp - ws), (hp - ws, hp - shift), (hp - shift, hp))
        bounds_w = ((0, wp - ws), (wp - ws, wp - shift), (wp - shift, wp))
        label = 0
        for y0, y1 in bounds:
            for x0, x1 in bounds_w:
                region[:, y0:y1, x0:x1] = label
                label += 1
        ids = window_partition(region, ws).squeeze(-1)  # (windows, N)
        differs = ids.unsqueeze(1) != ids.unsqueeze(2)
        return torch.zeros(differs.shape, device=device).masked_fill_(differs, _MASKED)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Returns (stage output, input of the next stage)."""
        mask = self.shift_mask(x.shape[1], x.shape[2], x.device)
        for block in self.blocks:
            x = block(x, mask)
        return x, (self.downsample(x) if self.downsample is not None else x)


class PatchEmbed(nn.Module):
    def __init__(self, dim: int, patch: int = 4) -> None:
        super().__init__()
        self.patch = patch
        self.proj = nn.Conv2d(3, dim, kernel_size=patch, stride=patch)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> Tensor:
        """(B, 3, H, W) -> (B, H/4, W/4, C)."""
        h, w = x.shape[-2:]
        x = F.pad(x, (0, (-w) % self.patch, 0, (-h) % self.patch))
        return self.norm(self.proj(x).permute(0, 2, 3, 1))


class SwinTransformer(nn.Module):
    """Returns the four stage outputs, each normalised, as (B, C_i, H/2^(i+2), W/2^(i+2))."""

    def __init__(
        self, embed_dim: int, depths: Sequence[int], heads: Sequence[int], window: int, mlp_ratio: float = 4.0
    ) -> None:
        super().__init__()
        dims = [embed_dim * 2**i for i in range(len(depths))]
        self.num_features = dims
        self.patch_embed = PatchEmbed(embed_dim)
        self.layers = nn.ModuleList(
            BasicLayer(dim, depth, head, window, int(dim * mlp_ratio), downsample=i < len(depths) - 1)
            for i, (dim, depth, head) in enumerate(zip(dims, depths, heads, strict=True))
        )
        for i, dim in enumerate(dims):
            self.add_module(f"norm{i}", nn.LayerNorm(dim))

    def forward(self, x: Tensor) -> list[Tensor]:
        x = self.patch_embed(x)
        outs = []
        for i, layer in enumerate(self.layers):
            out, x = layer(x)
            norm = getattr(self, f"norm{i}")
            outs.append(norm(out).permute(0, 3, 1, 2))  # NCHW view of channels-last memory
        return outs
