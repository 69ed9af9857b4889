"""BiRefNet on CPU: the fast precision (bf16 where the CPU has it) against plain float32.

    python benchmarks/birefnet_precision.py [--variant general|lite] [--size 1024] [--passes 3]

Both models carry the same random weights in the real architecture (PyTorch's default
initialisation; Swin's position-bias tables N(0, 0.02)), loaded through the real loader, and
both use this project's plain-PyTorch deformable convolution; the baseline computes in
float32, the fast model in the dtype ``choose_precision("cpu", "auto")`` picks. Passes
alternate between the two so a busy machine slows both alike; min and median are printed.

Random weights give logits far from a trained model's: their spread is small, so
sigmoid(logits) sits near 0.5 everywhere and any alpha difference would look tiny. To make
the comparison mean something, both models' logits go through the same affine map
z -> 3 (z - mu) / sigma, with mu and sigma of the float32 logits (the same as rescaling the
last 1x1 conv, ``decoder.conv_out1``): the float32 alpha then spreads over (0, 1) like a
real cut-out's, and the difference is measured on that alpha. The raw logit difference,
relative to the logits' spread, is printed too.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from visionatrix.engine.nets.birefnet import GENERAL, LITE, BiRefNet, birefnet_from_state_dict, preprocess
from visionatrix.models.device import choose_precision

LOGIT_SPREAD = 3.0


def random_model_weights(variant: str, seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    model = BiRefNet(GENERAL if variant == "general" else LITE)
    for name, param in model.named_parameters():
        if name.endswith("relative_position_bias_table"):
            param.data.normal_(0.0, 0.02)
    return model.state_dict()


def test_image(size: int) -> torch.Tensor:
    """A real photo (scikit-image's astronaut) when available, else smooth noise; (1, 3, H, W) in [0, 1]."""
    try:
        from skimage import data

        pixels = torch.from_numpy(data.astronaut()).permute(2, 0, 1)[None].float() / 255.0
    except ImportError:
        g = torch.Generator().manual_seed(0)
        pixels = torch.nn.functional.interpolate(torch.rand(1, 3, 16, 16, generator=g), size=(512, 512))
    return preprocess(pixels, size)


def timed_logits(model: BiRefNet, x: torch.Tensor) -> tuple[float, torch.Tensor]:
    dtype = next(model.parameters()).dtype
    with torch.inference_mode():
        start = time.perf_counter()
        logits = model(x.to(dtype).contiguous(memory_format=torch.channels_last)).float()
        return time.perf_counter() - start, logits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=("general", "lite"), default="general")
    parser.add_argument("--size", type=int, default=1024, help="input side (multiple of 32)")
    parser.add_argument("--passes", type=int, default=3, help="timed passes per precision")
    parser.add_argument("--dtype", default=None, help="fast dtype (default: what 'auto' picks here)")
    args = parser.parse_args()

    fast_dtype = getattr(torch, args.dtype or choose_precision("cpu", "auto"))
    cpu = torch.backends.cpu.get_cpu_capability()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU {cpu}")
    print(f"BiRefNet {args.variant} at {args.size}x{args.size}: float32 vs {fast_dtype}")
    weights = random_model_weights(args.variant)
    models = {
        "float32": birefnet_from_state_dict(weights, torch.float32),
        "fast": birefnet_from_state_dict(weights, fast_dtype),
    }
    del weights
    for model in models.values():
        model.set_pure_deform_conv(True)
    x = test_image(args.size)

    times: dict[str, list[float]] = {"float32": [], "fast": []}
    logits: dict[str, torch.Tensor] = {}
    for name, model in models.items():  # warm-up: one-off kernel and allocator setup
        logits[name] = timed_logits(model, x)[1]
    for i in range(args.passes):
        for name, model in models.items():
            seconds, logits[name] = timed_logits(model, x)
            times[name].append(seconds)
            print(f"  pass {i + 1} {name:>7}: {seconds:6.2f} s")
    report(times, logits, fast_dtype)


def report(times: dict[str, list[float]], logits: dict[str, torch.Tensor], fast_dtype: torch.dtype) -> None:
    ref, fast = logits["float32"], logits["fast"]
    mu, sigma = ref.mean(), ref.std()
    alpha_ref = torch.sigmoid(LOGIT_SPREAD * (ref - mu) / sigma)
    alpha_fast = torch.sigmoid(LOGIT_SPREAD * (fast - mu) / sigma)
    delta = (alpha_fast - alpha_ref).abs()
    for name in ("float32", "fast"):
        print(f"{name:>7}: min {min(times[name]):6.2f} s  median {statistics.median(times[name]):6.2f} s")
    print(
        f"speed-up ({fast_dtype} vs float32): min {min(times['float32']) / min(times['fast']):.2f}x, "
        f"median {statistics.median(times['float32']) / statistics.median(times['fast']):.2f}x"
    )
    relative = (fast - ref).abs().mean() / sigma
    print(f"raw logits: mean {mu:.4f} std {sigma:.4f}; mean |delta logit| / std = {relative:.4f}")
    spread = ((alpha_ref > 0.05) & (alpha_ref < 0.95)).float().mean()
    print(
        f"alpha (logits mapped to spread {LOGIT_SPREAD}): {spread:.0%} of pixels in (0.05, 0.95), "
        f"{(alpha_ref > 0.5).float().mean():.0%} above 0.5"
    )
    print(f"mean |delta alpha| = {delta.mean():.5f}, max = {delta.max():.4f}")


if __name__ == "__main__":
    main()
