"""BiRefNet's decoder: conv blocks around a deformable-conv ASPP, fed the image as patches.

Module and parameter names are the reference implementation's. The forward passes compute
the reference's function (inference only: batch norms use their running statistics,
dropout is off) with a few exact rewrites that save time and memory on CPU:

- each batch norm is folded into the conv before it (one pass over the activations);
- a conv over concatenated tensors is the sum of convs over the parts (no concatenation);
- the ASPP's 1x1 fusion conv is applied branch by branch, and its image-pooling branch,
  constant over the image, becomes a bias;
- the last 1x1 conv runs before the final 4x upsampling (both are linear), and is merged
  into the 3x3 conv before it on the image branch (no nonlinearity between them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from visionatrix.engine.nets.deform_conv import DeformableConv2d


@dataclass(frozen=True)
class BlockWidths:
    """Inside a decoder block: its conv width, each ASPP branch's, the deformable kernels."""

    inter: int = 64
    planes: int = 256
    kernels: tuple[int, ...] = (1, 3, 7)  # beside the 1x1 branch every ASPP has


def fold_bn(weight: Tensor, bias: Tensor | None, bn: nn.BatchNorm2d) -> tuple[Tensor, Tensor]:
    """A conv's weight and bias with the eval-mode batch norm after it folded in (float32 math)."""
    assert bn.running_var is not None and bn.running_mean is not None
    scale = bn.weight.float() * torch.rsqrt(bn.running_var.float() + bn.eps)
    shift = bn.bias.float() - bn.running_mean.float() * scale
    folded = weight.float() * scale.view(-1, *([1] * (weight.dim() - 1)))
    if bias is not None:
        shift = shift + bias.float() * scale
    return folded.to(weight.dtype), shift.to(weight.dtype)


def conv_parts(parts: Sequence[Tensor], weight: Tensor, bias: Tensor | None, padding: int) -> Tensor:
    """``conv2d(cat(parts, dim=1), weight, bias)`` without building the concatenation."""
    out: Tensor | None = None
    start = 0
    for part in parts:
        stop = start + part.shape[1]
        y = F.conv2d(part, weight[:, start:stop], bias if out is None else None, padding=padding)
        out = y if out is None else out.add_(y)
        start = stop
    if out is None or start != weight.shape[1]:
        raise ValueError(f"conv_parts: {start} input channels for a {tuple(weight.shape)} kernel")
    return out


def resize(x: Tensor, size: Sequence[int]) -> Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x  # align_corners=True at the same size is the identity
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=True)


def image_patches(image: Tensor, like: Tensor) -> Tensor:
    """Cut ``image`` into a grid of patches stacked on channels, at ``like``'s spatial size.

    Channel ``c * gh * gw + i * gw + j`` at (y, x) is pixel (i * h + y, j * w + x) of channel
    c: the layout of the reference's ``b c (hg h) (wg w) -> b (c hg wg) h w``.
    """
    b, c, height, width = image.shape
    h, w = like.shape[-2:]
    gh, gw = height // h, width // w
    x = image[..., : gh * h, : gw * w].reshape(b, c, gh, h, gw, w)
    return x.permute(0, 3, 5, 1, 2, 4).reshape(b, h, w, c * gh * gw).permute(0, 3, 1, 2)


class SimpleConvs(nn.Module):
    """Two 3x3 convs, no activation: the image-patch ("inward reference") branch."""

    def __init__(self, cin: int, cout: int, inter: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, inter, 3, 1, 1)
        self.conv_out = nn.Conv2d(inter, cout, 3, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv_out(self.conv1(x))


class _ASPPModuleDeformable(nn.Module):
    def __init__(self, cin: int, planes: int, kernel: int) -> None:
        super().__init__()
        self.atrous_conv = DeformableConv2d(cin, planes, kernel, padding=kernel // 2)
        self.bn = nn.BatchNorm2d(planes)

    def forward(self, x: Tensor) -> Tensor:
        weight, bias = fold_bn(self.atrous_conv.regular_conv.weight, None, self.bn)
        return F.relu_(self.atrous_conv(x, weight, bias))


class ASPPDeformable(nn.Module):
    def __init__(self, cin: int, planes: int, kernels: Sequence[int]) -> None:
        super().__init__()
        self.planes = planes
        self.aspp1 = _ASPPModuleDeformable(cin, planes, 1)
        self.aspp_deforms = nn.ModuleList(_ASPPModuleDeformable(cin, planes, k) for k in kernels)
        self.global_avg_pool = nn.Sequential(
            nn.AdaptiveAvgPool2d((1, 1)),
            nn.Conv2d(cin, planes, 1, bias=False),
            nn.BatchNorm2d(planes),
            nn.ReLU(),
        )
        self.conv1 = nn.Conv2d(planes * (2 + len(kernels)), cin, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cin)

    def forward(self, x: Tensor) -> Tensor:
        weight, bias = fold_bn(self.conv1.weight, None, self.bn1)
        n = self.planes
        # the pooled branch is one vector per image (its resize is a broadcast): a bias
        out = F.conv2d(self.global_avg_pool(x), weight[:, -n:], bias)
        for i, branch in enumerate((self.aspp1, *self.aspp_deforms)):
            out = out + F.conv2d(branch(x), weight[:, i * n : (i + 1) * n])
        return F.relu_(out)  # dropout: identity at inference


class BasicDecBlk(nn.Module):
    def __init__(self, cin: int, cout: int, widths: BlockWidths) -> None:
        super().__init__()
        inter = widths.inter
        self.conv_in = nn.Conv2d(cin, inter, 3, 1, 1)
        self.dec_att = ASPPDeformable(inter, widths.planes, widths.kernels)
        self.conv_out = nn.Conv2d(inter, cout, 3, 1, 1)
        self.bn_in = nn.BatchNorm2d(inter)
        self.bn_out = nn.BatchNorm2d(cout)

    def forward(self, x: Tensor | Sequence[Tensor]) -> Tensor:
        """``x``: the input, or the parts of an input concatenated on channels."""
        weight, bias = fold_bn(self.conv_in.weight, self.conv_in.bias, self.bn_in)
        x = F.relu_(conv_parts([x] if isinstance(x, Tensor) else x, weight, bias, padding=1))
        weight, bias = fold_bn(self.conv_out.weight, self.conv_out.bias, self.bn_out)
        return F.conv2d(self.dec_att(x), weight, bias, padding=1)


class BasicLatBlk(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1, 1, 0)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


def _gdt_convs(cin: int, n: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, n, 3, 1, 1), nn.BatchNorm2d(n), nn.ReLU())


class Decoder(nn.Module):
    """``channels``: the decoder inputs' widths, deepest first; ``patch_out``: stages 5..1."""

    def __init__(
        self,
        channels: Sequence[int],
        patch_out: Sequence[int],
        patch_inter: int,
        widths: BlockWidths,
        gdt_channels: int,
    ) -> None:
        super().__init__()
        ch, po, n = channels, patch_out, gdt_channels
        for i, (cin, cout) in enumerate(zip((3 * 4**5, 3 * 4**4, 3 * 4**3, 3 * 4**2, 3), po, strict=True)):
            self.add_module(f"ipt_blk{5 - i}", SimpleConvs(cin, cout, patch_inter))
        self.decoder_block4 = BasicDecBlk(ch[0] + po[0], ch[1], widths)
        self.decoder_block3 = BasicDecBlk(ch[1] + po[1], ch[2], widths)
        self.decoder_block2 = BasicDecBlk(ch[2] + po[2], ch[3], widths)
        self.decoder_block1 = BasicDecBlk(ch[3] + po[3], ch[3] // 2, widths)
        self.conv_out1 = nn.Sequential(nn.Conv2d(ch[3] // 2 + po[4], 1, 1, 1, 0))
        for i, c in zip((4, 3, 2), ch[1:], strict=True):
            self.add_module(f"lateral_block{i}", BasicLatBlk(c, c))
        # multi-scale and gradient supervision heads: used in training only, kept so weights load
        for i, c in zip((4, 3, 2), ch[1:], strict=True):
            self.add_module(f"conv_ms_spvn_{i}", nn.Conv2d(c, 1, 1, 1, 0))
        for i, c in zip((4, 3, 2), ch[1:], strict=True):
            self.add_module(f"gdt_convs_{i}", _gdt_convs(c, n))
            self.add_module(f"gdt_convs_pred_{i}", nn.Sequential(nn.Conv2d(n, 1, 1, 1, 0)))
            self.add_module(f"gdt_convs_attn_{i}", nn.Sequential(nn.Conv2d(n, 1, 1, 1, 0)))

    def _patches(self, image: Tensor, like: Tensor, stage: int) -> Tensor:
        return getattr(self, f"ipt_blk{stage}")(image_patches(image, like))

    def _gate(self, p: Tensor, stage: int) -> Tensor:
        """Outward reference: scale features by a sigmoid attention from the gradient branch."""
        convs = getattr(self, f"gdt_convs_{stage}")
        weight, bias = fold_bn(convs[0].weight, convs[0].bias, convs[1])
        g = F.relu_(F.conv2d(p, weight, bias, padding=1))
        return p * torch.sigmoid(getattr(self, f"gdt_convs_attn_{stage}")(g))

    def _logits(self, p1: Tensor, image: Tensor) -> Tensor:
        """conv_out1(cat(resize(p1), ipt_blk1(image))), computed at p1's size where it is linear."""
        conv, patch = self.conv_out1[0], self.ipt_blk1
        c = p1.shape[1]
        on_patches = conv.weight[:, c:].flatten(1).float()  # (1, patch channels)
        merged = torch.einsum("oc,cikl->oikl", on_patches, patch.conv_out.weight.float())
        bias = conv.bias.float() + on_patches @ patch.conv_out.bias.float()
        z = resize(F.conv2d(p1, conv.weight[:, :c]), image.shape[-2:])
        detail = F.conv2d(patch.conv1(image_patches(image, image)), merged.to(p1.dtype), padding=1)
        return z + detail + bias.to(p1.dtype).view(1, -1, 1, 1)

    def forward(self, image: Tensor, x1: Tensor, x2: Tensor, x3: Tensor, x4: Tensor) -> Tensor:
        p4 = self._gate(self.decoder_block4([x4, self._patches(image, x4, 5)]), 4)
        p3 = resize(p4, x3.shape[-2:]) + self.lateral_block4(x3)
        p3 = self._gate(self.decoder_block3([p3, self._patches(image, p3, 4)]), 3)
        p2 = resize(p3, x2.shape[-2:]) + self.lateral_block3(x2)
        p2 = self._gate(self.decoder_block2([p2, self._patches(image, p2, 3)]), 2)
        p1 = resize(p2, x1.shape[-2:]) + self.lateral_block2(x1)
        p1 = self.decoder_block1([p1, self._patches(image, p1, 2)])
        return self._logits(p1, image)
