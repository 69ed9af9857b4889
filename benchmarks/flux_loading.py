"""Loading a Flux transformer file: this project's streaming loader against diffusers' ``from_single_file``.

    python benchmarks/flux_loading.py [--double 1] [--single 2] [--runs 2]

Writes a random Flux.1 transformer at the published width (3072, 24 heads of 128, MLP 12288) with
``--double``/``--single`` blocks in BFL's single-file layout, bfloat16 (1 + 2 blocks: 0.62 B values,
1.25 GB), then loads it in fresh processes, alternating, and prints each loader's peak resident
memory above the process's start once every weight has been read (peak and after), and the load's
time, with ratios against diffusers:

- baseline: ``FluxTransformer2DModel.from_single_file(path, config=<local config>)`` in bfloat16
  (reads the whole state dict, converts it, builds the model, then loads it);
- ours, bf16: ``flux_loader.fill`` keeping every weight in bfloat16;
- ours, fp8: ``flux_loader.fill`` keeping linear weights float8_e4m3fn (UNETLoader's default
  ``weight_dtype`` in the catalog flows).

The full 12 B model scales the same way: 19 double and 38 single blocks.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from visionatrix.engine.nets import flux_keys, flux_loader

WIDTH, HEADS, HEAD_DIM = 3072, 24, 128


def write_file(path: Path, double: int, single: int) -> int:
    """A random BFL-layout transformer; returns its size in bytes."""
    from safetensors.torch import save_file

    spec = flux_loader.FluxSpec(
        shape=flux_keys.FluxShape(WIDTH, double, single, True),
        head_dim=HEAD_DIM,
        in_channels=16,
        out_channels=16,
        context_dim=4096,
        pooled_dim=768,
        prefix="",
    )
    model = flux_loader.build_meta(spec)
    shapes = {n: tuple(p.shape) for n, p in model.named_parameters()}
    tensors: dict[str, torch.Tensor] = {}
    for name, source in flux_keys.transformer_sources(spec.shape).items():
        rows, rest = shapes[name][0], shapes[name][1:]
        if source.op == "rows":
            rows = max(
                s.stop for s in flux_keys.transformer_sources(spec.shape).values() if s.key == source.key
            )
        if source.key not in tensors:
            tensors[source.key] = (torch.randn(rows, *rest) * 0.02).to(torch.bfloat16)
    save_file(tensors, str(path))
    return path.stat().st_size


def _config(folder: Path, double: int, single: int) -> Path:
    config = {
        "_class_name": "FluxTransformer2DModel",
        "patch_size": 1,
        "in_channels": 64,
        "num_layers": double,
        "num_single_layers": single,
        "attention_head_dim": HEAD_DIM,
        "num_attention_heads": HEADS,
        "joint_attention_dim": 4096,
        "pooled_projection_dim": 768,
        "guidance_embeds": True,
        "axes_dims_rope": [16, 56, 56],
    }
    target = folder / "transformer"
    target.mkdir(exist_ok=True)
    (target / "config.json").write_text(json.dumps(config))
    return folder


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def load_once(mode: str, path: Path, config_dir: Path) -> dict[str, float]:
    """In this (fresh) process: load ``path`` the ``mode`` way, then touch every weight (as a first
    step would); resident memory above the start, at the peak and after, and the load's seconds."""
    from diffusers import FluxTransformer2DModel

    start = _status("VmRSS")
    began = time.perf_counter()
    if mode == "diffusers":
        model = FluxTransformer2DModel.from_single_file(
            str(path),
            config=str(config_dir),
            subfolder="transformer",
            torch_dtype=torch.bfloat16,
            local_files_only=True,
        )
    else:
        spec = flux_loader.read_spec(path)
        storage = torch.float8_e4m3fn if mode == "ours-fp8" else torch.bfloat16
        model = flux_loader.fill(flux_loader.build_meta(spec), path, spec, "cpu", storage, torch.bfloat16)
    seconds = time.perf_counter() - began
    with torch.inference_mode():
        for p in model.parameters():  # a first denoising step reads every weight
            p.float().sum()
    held = sum(p.numel() * p.element_size() for p in model.parameters())
    return {
        "peak": _status("VmHWM") - start,
        "after": _status("VmRSS") - start,
        "seconds": seconds,
        "held": held,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--double", type=int, default=1)
    parser.add_argument("--single", type=int, default=2)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--child", nargs=3, metavar=("MODE", "FILE", "CONFIG"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, file, config = args.child
        print(json.dumps(load_once(mode, Path(file), Path(config))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        size = write_file(folder / "flux.safetensors", args.double, args.single)
        config = _config(folder, args.double, args.single)
        print(f"file: {size / 1e9:.2f} GB ({args.double} double + {args.single} single blocks, bf16)")
        results: dict[str, list[dict[str, float]]] = {"diffusers": [], "ours-bf16": [], "ours-fp8": []}
        for _ in range(args.runs):
            for mode in results:  # alternating: a busy machine slows all three alike
                out = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--child",
                        mode,
                        str(folder / "flux.safetensors"),
                        str(config),
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                results[mode].append(json.loads(out.stdout.strip().splitlines()[-1]))
    base = {k: statistics.median(r[k] for r in results["diffusers"]) for k in ("peak", "after", "seconds")}
    header = ("loader", "peak RSS", "ratio", "resident", "ratio", "weights", "seconds", "ratio")
    print("{:<10} {:>9} {:>6} {:>9} {:>6} {:>8} {:>8} {:>6}".format(*header))
    for mode, runs in results.items():
        m = {k: statistics.median(r[k] for r in runs) for k in ("peak", "after", "seconds")}
        peak, after, seconds = m["peak"], m["after"], m["seconds"]
        print(
            f"{mode:<10} {peak / 1e9:>7.2f}GB {peak / base['peak']:>5.2f}x {after / 1e9:>7.2f}GB "
            f"{after / base['after']:>5.2f}x {runs[0]['held'] / 1e9:>6.2f}GB {seconds:>8.2f} "
            f"{seconds / base['seconds']:>5.2f}x"
        )


if __name__ == "__main__":
    main()
