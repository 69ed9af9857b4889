"""Tiny random BiRefNet checkpoints in the real file format, for tests.

The file has exactly the tensor names of the published ``General.safetensors`` (Swin-L: same
stage depths, window 12) or ``General-Lite.safetensors`` (Swin-T: window 7); only the widths
are small, so it loads through the same loader (which reads widths from shapes) and runs a
forward pass in about a second.
"""

from __future__ import annotations

from pathlib import Path

TINY = {
    # real depths and window sizes (they fix the tensor names and the bias-table shapes)
    "general": {"depths": (2, 2, 18, 2), "window_size": 12},
    "lite": {"depths": (2, 2, 6, 2), "window_size": 7},
}
_TINY_WIDTHS = {
    "embed_dim": 8,
    "num_heads": (1, 2, 2, 4),
    "dec_channels": 8,
    "aspp_channels": 8,
    "ipt_channels": 8,
    "gdt_channels": 4,
}


def write_tiny_birefnet(path: Path, variant: str = "general", seed: int = 0, dtype: str = "float32") -> Path:
    """Write a randomly initialised small BiRefNet of ``variant`` ("general" or "lite") to ``path``,
    its tensors in ``dtype`` (a torch dtype name)."""
    import torch
    from safetensors.torch import save_file

    from visionatrix.engine.nets.birefnet import BiRefNet, BiRefNetConfig

    if variant not in TINY:
        raise ValueError(f"variant {variant!r}: expected one of {', '.join(TINY)}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = BiRefNet(BiRefNetConfig(**TINY[variant], **_TINY_WIDTHS))  # type: ignore[arg-type]
        for name, param in model.named_parameters():
            if name.endswith("relative_position_bias_table"):  # zeros by default
                param.data.normal_(0.0, 0.02)
    state = {k: v.to(getattr(torch, dtype)).contiguous() for k, v in model.state_dict().items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path))
    return path
