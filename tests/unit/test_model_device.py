"""models.device: device and precision choices, with and without torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

from visionatrix.errors import InvalidInput
from visionatrix.models.device import choose_device, choose_precision, cpu_has_native_bf16


def test_auto_device_follows_cuda_availability():
    torch = pytest.importorskip("torch")
    assert choose_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert choose_device("CPU") == "cpu"


def test_asking_for_cuda_without_a_gpu_is_refused():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        assert choose_device("cuda") == "cuda"
    else:
        with pytest.raises(InvalidInput, match="'cuda'"):
            choose_device("cuda")


def test_precision_auto_and_explicit():
    assert choose_precision("cuda") == "float16"
    assert choose_precision("cuda:1") == "float16"
    assert choose_precision("cpu", "bfloat16") == "bfloat16"
    assert choose_precision("cpu") == ("bfloat16" if cpu_has_native_bf16() else "float32")
    with pytest.raises(InvalidInput, match="'fp8'"):
        choose_precision("cpu", "fp8")


def test_bf16_detection_reads_cpu_flags(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f\n")
    assert not cpu_has_native_bf16(info)
    info.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16\n")
    assert cpu_has_native_bf16(info)
    info.write_text("processor\t: 0\nFeatures\t: fp asimd bf16 i8mm\n")  # aarch64 spelling
    assert cpu_has_native_bf16(info)
    assert not cpu_has_native_bf16(tmp_path / "absent")


def test_without_torch_it_is_cpu_and_float32():
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from visionatrix.models.device import choose_device, choose_precision\n"
        "print(choose_device(), choose_precision(choose_device()))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["cpu", "float32"]
