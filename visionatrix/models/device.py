"""Which device and number format a worker computes in. Works (cpu, float32) without torch."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from visionatrix.errors import InvalidInput

PRECISIONS = ("float32", "bfloat16", "float16")
# CPU flags of instruction sets that compute in bfloat16 natively; without them torch emulates
# bf16 and it runs slower than float32.
_BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})


def choose_device(setting: str = "auto") -> str:
    """``"cuda"`` when ``auto`` and a CUDA GPU is usable, else ``"cpu"``; explicit settings pass through."""
    setting = (setting or "auto").strip().lower()
    if setting == "auto":
        return "cuda" if _cuda_available() else "cpu"
    if setting.startswith("cuda") and not _cuda_available():
        raise InvalidInput(f"device {setting!r}: no usable CUDA GPU (or no CUDA build of torch) here")
    return setting


def choose_precision(device: str, setting: str = "auto") -> str:
    """The torch dtype name to compute in on ``device``.

    ``auto``: float16 on CUDA, bfloat16 on CPUs with native bf16 instructions, else float32
    (always float32 without torch: the ONNX models then in use compute in float32).
    """
    setting = (setting or "auto").strip().lower()
    if setting != "auto":
        if setting not in PRECISIONS:
            raise InvalidInput(f"precision {setting!r}: expected auto or one of {', '.join(PRECISIONS)}")
        return setting
    if device.startswith("cuda"):
        return "float16"
    if device == "cpu" and _torch_installed() and cpu_has_native_bf16():
        return "bfloat16"
    return "float32"


def _torch_installed() -> bool:
    return importlib.util.find_spec("torch") is not None


def _cuda_available() -> bool:
    if not _torch_installed():
        return False
    import torch

    return bool(torch.cuda.is_available())


def cpu_has_native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """True on x86 CPUs with AVX512-BF16 or AMX, and ARM CPUs with the BF16 extension (Linux)."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:  # no /proc (macOS, Windows): float32 is the choice that is never slow
        return False
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features") and _BF16_CPU_FLAGS & set(value.split()):
            return True
    return False
