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

from visionatrix.engine.nets.birefnet_decoder import BasicDecBlk, BlockWidths, Decoder, resize
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


class BiRefNet(nn.Module):
    """``forward(normalised image) -> logits`` of shape (B, 1, H, W)."""

    def __init__(self, cfg: BiRefNetConfig = GENERAL) -> None:
        super().__init__()
        self.config = cfg
        self.bb = SwinTransformer(cfg.embed_dim, cfg.depths, cfg.num_heads, cfg.window_size, cfg.mlp_ratio)
        ch = cfg.lateral
        widths = BlockWidths(cfg.dec_channels, cfg.aspp_channels, cfg.aspp_kernels)
        self.squeeze_module = nn.Sequential(
            *(BasicDecBlk(ch[0] + sum(ch[1:]), ch[0], widths) for _ in range(cfg.squeeze_blocks))
        )
        self.decoder = Decoder(ch, cfg.ipt_out, cfg.ipt_channels, widths, cfg.gdt_channels)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, list[Tensor]]:
        """Backbone features at full and half input size, concatenated.

        The deepest level comes as parts (the three shallower levels resized to its size,
        then itself) whose channel concatenation is the squeeze block's input.
        """
        h, w = x.shape[-2:]
        full = self.bb(x)
        half = self.bb(F.interpolate(x, size=(h // 2, w // 2), mode="bilinear", align_corners=True))
        x1, x2, x3, x4 = (
            torch.cat((f, resize(g, f.shape[-2:])), dim=1) for f, g in zip(full, half, strict=True)
        )
        return x1, x2, x3, [resize(f, x4.shape[-2:]) for f in (x1, x2, x3)] + [x4]

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        if h % SIZE_MULTIPLE or w % SIZE_MULTIPLE:
            raise ValueError(f"BiRefNet input {h}x{w}: sides must be multiples of {SIZE_MULTIPLE}")
        x1, x2, x3, context = self.encode(x)
        return self.decoder(x, x1, x2, x3, self.squeeze_module(context))

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
    table = shape("bb.layers.0.blocks.0.attn.relative_position_bias_table")[0]
    window = (round(table**0.5) + 1) // 2
    kernels = []
    while f"squeeze_module.0.dec_att.aspp_deforms.{len(kernels)}.atrous_conv.regular_conv.weight" in sd:
        kernels.append(
            shape(f"squeeze_module.0.dec_att.aspp_deforms.{len(kernels)}.atrous_conv.regular_conv.weight")[-1]
        )
    squeeze = len({n.split(".")[1] for n in sd if n.startswith("squeeze_module.")})
    return BiRefNetConfig(
        embed_dim=embed,
        depths=tuple(counts[i] for i in range(4)),
        num_heads=tuple(
            shape(f"bb.layers.{i}.blocks.0.attn.relative_position_bias_table")[1] for i in range(4)
        ),
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


def load_birefnet(
    path: Path, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu"
) -> BiRefNet:
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
