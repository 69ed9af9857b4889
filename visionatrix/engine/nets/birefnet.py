"""BiRefNet (bilateral reference network for dichotomous segmentation), inference only.

The architecture of the published "General" (Swin-L) and "General-Lite" (Swin-T) checkpoints:
a Swin backbone run on the image and on a half-size copy (features concatenated), the three
shallower feature maps resized into the deepest one as context, a squeeze block, and a
decoder whose blocks are conv -> deformable-conv ASPP -> conv. Each decoder stage takes the
input image again, cut into patches that match its resolution (the "inward reference"), and
three stages gate their features with a learned gradient attention map (the "outward
reference"; its training-time Laplacian supervision heads exist here only so the weights
load). The last stage's 1x1 conv gives the logits; alpha = sigmoid(logits).

Module and parameter names match the reference implementation's state dict, so the
published ``model.safetensors`` files load strictly. All widths are read from the weights
(``config_from_state_dict``), so smaller test checkpoints with the same names load through
the same code.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from visionatrix.engine.nets.deform_conv import DeformableConv2d
from visionatrix.engine.nets.swin import SwinTransformer
from visionatrix.errors import InvalidInput

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INPUT_SIZE = 1024
# Input sides must be multiples of the backbone's total stride (the decoder cuts the image
# into exactly as many patches as the deepest feature map has pixels).
SIZE_MULTIPLE = 32


@dataclass(frozen=True)
class BiRefNetConfig:
    """Widths and depths; defaults are the General (Swin-L) checkpoint."""

    embed_dim: int = 192
    depths: tuple[int, ...] = (2, 2, 18, 2)
    num_heads: tuple[int, ...] = (6, 12, 24, 48)
    window_size: int = 12
    mlp_ratio: float = 4.0
    dec_channels: int = 64  # inside each decoder block
    aspp_channels: int = 256  # each ASPP branch
    aspp_kernels: tuple[int, ...] = (1, 3, 7)  # the deformable branches beside the 1x1 one
    ipt_channels: int = 64  # inside the image-patch convs
    # image-patch conv outputs, stages 5..1; empty: the reference's lateral widths / 8
    ipt_out: tuple[int, ...] = ()
    gdt_channels: int = 16
    squeeze_blocks: int = 1

    def __post_init__(self) -> None:
        if not self.ipt_out:
            ch = self.lateral
            object.__setattr__(self, "ipt_out", (ch[0] // 8, ch[0] // 8, ch[1] // 8, ch[2] // 8, ch[3] // 8))

    @property
    def lateral(self) -> list[int]:
        """Channels of the decoder's inputs, deepest first (backbone widths x2: two scales)."""
        dims = [self.embed_dim * 2**i for i in range(len(self.depths))]
        return [2 * d for d in reversed(dims)]


GENERAL = BiRefNetConfig()
LITE = BiRefNetConfig(embed_dim=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24), window_size=7)


class SimpleConvs(nn.Module):
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
        return F.relu(self.bn(self.atrous_conv(x)))


class ASPPDeformable(nn.Module):
    def __init__(self, cin: int, planes: int, kernels: tuple[int, ...]) -> None:
        super().__init__()
        self.aspp1 = _ASPPModuleDeformable(cin, planes, 1)
        self.aspp_deforms = nn.ModuleList(_ASPPModuleDeformable(cin, planes, k) for k in kernels)
        self.global_avg_pool = nn.Sequential(
            nn.AdaptiveAvgPool2d((1, 1)), nn.Conv2d(cin, planes, 1, bias=False), nn.BatchNorm2d(planes), nn.ReLU()
        )
        self.conv1 = nn.Conv2d(planes * (2 + len(kernels)), cin, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cin)

    def forward(self, x: Tensor) -> Tensor:
        branches = [self.aspp1(x), *(m(x) for m in self.aspp_deforms)]
        pooled = self.global_avg_pool(x).expand(-1, -1, *x.shape[2:])  # = bilinear resize of 1x1
        x = torch.cat((*branches, pooled), dim=1)
        return F.relu(self.bn1(self.conv1(x)))  # dropout: identity at inference


class BasicDecBlk(nn.Module):
    def __init__(self, cin: int, cout: int, cfg: BiRefNetConfig) -> None:
        super().__init__()
        inter = cfg.dec_channels
        self.conv_in = nn.Conv2d(cin, inter, 3, 1, 1)
        self.dec_att = ASPPDeformable(inter, cfg.aspp_channels, cfg.aspp_kernels)
        self.conv_out = nn.Conv2d(inter, cout, 3, 1, 1)
        self.bn_in = nn.BatchNorm2d(inter)
        self.bn_out = nn.BatchNorm2d(cout)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.bn_in(self.conv_in(x)))
        return self.bn_out(self.conv_out(self.dec_att(x)))


class BasicLatBlk(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1, 1, 0)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


def image_patches(image: Tensor, like: Tensor) -> Tensor:
    """Cut ``image`` into a grid of patches stacked on channels, at ``like``'s spatial size.

    Channel ``c * gh * gw + i * gw + j`` at (y, x) is pixel (i * h + y, j * w + x) of channel
    c, the layout of the reference's ``b c (hg h) (wg w) -> b (c hg wg) h w``.
    """
    b, c, height, width = image.shape
    h, w = like.shape[-2:]
    gh, gw = height // h, width // w
    x = image[..., : gh * h, : gw * w].reshape(b, c, gh, h, gw, w)
    x = x.permute(0, 3, 5, 1, 2, 4).reshape(b, h, w, c * gh * gw).permute(0, 3, 1, 2)
    return x if (h, w) == tuple(like.shape[-2:]) else _resize(x, like.shape[-2:])


def _resize(x: Tensor, size: tuple[int, ...] | torch.Size) -> Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x  # align_corners=True at the same size is the identity
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=True)


def _gdt_convs(cin: int, n: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, n, 3, 1, 1), nn.BatchNorm2d(n), nn.ReLU())


class Decoder(nn.Module):
    def __init__(self, cfg: BiRefNetConfig) -> None:
        super().__init__()
        ch, po, n = cfg.lateral, cfg.ipt_out, cfg.gdt_channels
        ic = cfg.ipt_channels
        for i, (cin, cout) in enumerate(zip((3 * 4**5, 3 * 4**4, 3 * 4**3, 3 * 4**2, 3), po, strict=True)):
            self.add_module(f"ipt_blk{5 - i}", SimpleConvs(cin, cout, ic))
        self.decoder_block4 = BasicDecBlk(ch[0] + po[0], ch[1], cfg)
        self.decoder_block3 = BasicDecBlk(ch[1] + po[1], ch[2], cfg)
        self.decoder_block2 = BasicDecBlk(ch[2] + po[2], ch[3], cfg)
        self.decoder_block1 = BasicDecBlk(ch[3] + po[3], ch[3] // 2, cfg)
        self.conv_out1 = nn.Sequential(nn.Conv2d(ch[3] // 2 + po[4], 1, 1, 1, 0))
        for i, c in zip((4, 3, 2), ch[1:], strict=True):
            self.add_module(f"lateral_block{i}", BasicLatBlk(c, c))
        # multi-scale supervision heads: training only, kept so the weights load
        for i, c in zip((4, 3, 2), ch[1:], strict=True):
            self.add_module(f"conv_ms_spvn_{i}", nn.Conv2d(c, 1, 1, 1, 0))
        for i, c in zip((4, 3, 2), ch[1:], strict=True):
            self.add_module(f"gdt_convs_{i}", _gdt_convs(c, n))
            self.add_module(f"gdt_convs_pred_{i}", nn.Sequential(nn.Conv2d(n, 1, 1, 1, 0)))  # training only
            self.add_module(f"gdt_convs_attn_{i}", nn.Sequential(nn.Conv2d(n, 1, 1, 1, 0)))

    def _with_patches(self, x: Tensor, image: Tensor, stage: int) -> Tensor:
        patches = getattr(self, f"ipt_blk{stage}")(image_patches(image, x))
        return torch.cat((x, patches), dim=1)

    def _gate(self, p: Tensor, stage: int) -> Tensor:
        """Outward reference: scale features by a sigmoid attention from the gradient branch."""
        g = getattr(self, f"gdt_convs_{stage}")(p)
        return p * torch.sigmoid(getattr(self, f"gdt_convs_attn_{stage}")(g))

    def forward(self, image: Tensor, x1: Tensor, x2: Tensor, x3: Tensor, x4: Tensor) -> Tensor:
        p4 = self._gate(self.decoder_block4(self._with_patches(x4, image, 5)), 4)
        p3 = _resize(p4, x3.shape[-2:]) + self.lateral_block4(x3)
        p3 = self._gate(self.decoder_block3(self._with_patches(p3, image, 4)), 3)
        p2 = _resize(p3, x2.shape[-2:]) + self.lateral_block3(x2)
        p2 = self._gate(self.decoder_block2(self._with_patches(p2, image, 3)), 2)
        p1 = _resize(p2, x1.shape[-2:]) + self.lateral_block2(x1)
        p1 = self.decoder_block1(self._with_patches(p1, image, 2))
        p1 = _resize(p1, image.shape[-2:])
        return self.conv_out1(self._with_patches(p1, image, 1))


class BiRefNet(nn.Module):
    """``forward(normalised image) -> logits`` of shape (B, 1, H, W)."""

    def __init__(self, cfg: BiRefNetConfig = GENERAL) -> None:
        super().__init__()
        self.config = cfg
        self.bb = SwinTransformer(cfg.embed_dim, cfg.depths, cfg.num_heads, cfg.window_size, cfg.mlp_ratio)
        ch = cfg.lateral
        context = sum(ch[1:])
        self.squeeze_module = nn.Sequential(
            *(BasicDecBlk(ch[0] + context, ch[0], cfg) for _ in range(cfg.squeeze_blocks))
        )
        self.decoder = Decoder(cfg)

    def encode(self, x: Tensor) -> list[Tensor]:
        """Backbone features at full and half input size, concatenated; deepest gets context."""
        h, w = x.shape[-2:]
        full = self.bb(x)
        half = self.bb(F.interpolate(x, size=(h // 2, w // 2), mode="bilinear", align_corners=True))
        feats = [torch.cat((f, _resize(g, f.shape[-2:])), dim=1) for f, g in zip(full, half, strict=True)]
        x1, x2, x3, x4 = feats
        x4 = torch.cat([_resize(f, x4.shape[-2:]) for f in (x1, x2, x3)] + [x4], dim=1)
        return [x1, x2, x3, x4]

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        if h % SIZE_MULTIPLE or w % SIZE_MULTIPLE:
            raise ValueError(f"BiRefNet input {h}x{w}: sides must be multiples of {SIZE_MULTIPLE}")
        x1, x2, x3, x4 = self.encode(x)
        x4 = self.squeeze_module(x4)
        return self.decoder(x, x1, x2, x3, x4)

    def set_pure_deform_conv(self, pure: bool = True) -> None:
        """Force the plain-PyTorch deformable conv even where torchvision is available."""
        for m in self.modules():
            if isinstance(m, DeformableConv2d):
                m.prefer_pure = pure


# ---------------------------------------------------------------------------------- loading


def config_from_state_dict(sd: Mapping[str, Tensor], source: str = "checkpoint") -> BiRefNetConfig:
    """Read every width BiRefNet needs from tensor shapes (General, Lite, or smaller test models)."""

    def shape(name: str) -> tuple[int, ...]:
        if name not in sd:
            raise InvalidInput(f"{source}: not a BiRefNet checkpoint, tensor {name!r} is missing")
        return tuple(sd[name].shape)

    block = re.compile(r"bb\.layers\.(\d+)\.blocks\.(\d+)\.norm1\.weight$")
    counts: dict[int, int] = {}
    for name in sd:
        if m := block.match(name):
            counts[int(m[1])] = max(counts.get(int(m[1]), 0), int(m[2]) + 1)
    if sorted(counts) != list(range(4)):
        raise InvalidInput(
            f"{source}: not a BiRefNet checkpoint (expected a 4-stage Swin backbone under 'bb.layers', "
            f"found stages {sorted(counts)})"
        )
    embed = shape("bb.patch_embed.proj.weight")[0]
    table, heads0 = shape("bb.layers.0.blocks.0.attn.relative_position_bias_table")
    window = (round(table**0.5) + 1) // 2
    kernels = []
    while f"squeeze_module.0.dec_att.aspp_deforms.{len(kernels)}.atrous_conv.regular_conv.weight" in sd:
        kernels.append(shape(f"squeeze_module.0.dec_att.aspp_deforms.{len(kernels)}.atrous_conv.regular_conv.weight")[-1])
    squeeze = len({n.split(".")[1] for n in sd if n.startswith("squeeze_module.")})
    return BiRefNetConfig(
        embed_dim=embed,
        depths=tuple(counts[i] for i in range(4)),
        num_heads=tuple(shape(f"bb.layers.{i}.blocks.0.attn.relative_position_bias_table")[1] for i in range(4)),
        window_size=window,
        mlp_ratio=shape("bb.layers.0.blocks.0.mlp.fc1.weight")[0] / embed,
        dec_channels=shape("decoder.decoder_block4.conv_in.weight")[0],
        aspp_channels=shape("decoder.decoder_block4.dec_att.aspp1.atrous_conv.regular_conv.weight")[0],
        aspp_kernels=tuple(kernels),
        ipt_channels=shape("decoder.ipt_blk5.conv1.weight")[0],
        ipt_out=tuple(shape(f"decoder.ipt_blk{i}.conv_out.weight")[0] for i in (5, 4, 3, 2, 1)),
        gdt_channels=shape("decoder.gdt_convs_4.0.weight")[0],
        squeeze_blocks=squeeze,
    )


def check_state_dict(model: nn.Module, sd: Mapping[str, Tensor], source: str = "checkpoint") -> None:
    """Raise ``InvalidInput`` naming every missing, unexpected or wrongly shaped tensor."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = sorted(set(expected) - set(sd))
    unexpected = sorted(set(sd) - set(expected))
    wrong = sorted(
        f"{k} {tuple(sd[k].shape)} (expected {expected[k]})"
        for k in set(expected) & set(sd)
        if tuple(sd[k].shape) != expected[k]
    )
    problems = [
        f"{label} ({len(items)}): {', '.join(items[:8])}{' ...' if len(items) > 8 else ''}"
        for label, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong))
        if items
    ]
    if problems:
        raise InvalidInput(f"{source} does not match the BiRefNet layout: " + "; ".join(problems))


def birefnet_from_state_dict(
    sd: Mapping[str, Tensor],
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
    source: str = "checkpoint",
) -> BiRefNet:
    """Build the model the weights describe and load them strictly (no missing/extra tensor)."""
    cfg = config_from_state_dict(sd, source)
    with torch.device("meta"):
        model = BiRefNet(cfg)
    check_state_dict(model, sd, source)
    model.load_state_dict(dict(sd), strict=True, assign=True)
    for m in model.modules():  # an index, whatever number format the file stored it in
        if hasattr(m, "relative_position_index"):
            m.relative_position_index = m.relative_position_index.long()
    model.to(device=device, dtype=dtype)
    model.to(memory_format=torch.channels_last)  # convs read channels-last features
    return model.eval().requires_grad_(False)


def load_birefnet(path: Path, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu") -> BiRefNet:
    """Load a BiRefNet ``.safetensors`` (or ``.pth`` state dict) file."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        sd = load_file(str(path), device="cpu")
    else:
        sd = torch.load(path, map_location="cpu", weights_only=True)
        sd = sd.get("state_dict", sd) if isinstance(sd, dict) else sd
        sd = {k.removeprefix("module.").removeprefix("_orig_mod."): v for k, v in sd.items()}
    return birefnet_from_state_dict(sd, dtype, device, source=path.name)


# -------------------------------------------------------------------------------- inference


def preprocess(rgb: Tensor, size: int = INPUT_SIZE) -> Tensor:
    """(B, 3, H, W) in [0, 1] -> resized to size x size and ImageNet-normalised."""
    x = F.interpolate(rgb, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


@torch.inference_mode()
def predict_alpha(model: BiRefNet, rgb: Tensor, size: int = INPUT_SIZE) -> Tensor:
    """(B, 3, H, W) float in [0, 1] -> alpha (B, H, W) float32 in [0, 1] at the input size."""
    param = next(model.parameters())
    x = preprocess(rgb.to(param.device, torch.float32), size).to(param.dtype)
    logits = model(x.contiguous(memory_format=torch.channels_last)).float()
    alpha = torch.sigmoid(logits)
    alpha = F.interpolate(alpha, size=tuple(rgb.shape[-2:]), mode="bilinear", align_corners=False)
    return alpha[:, 0].clamp_(0, 1)
