"""Result encoding and cut-out colour at 1024x1024: what SaveImage and RembgByBiRefNet cost on CPU.

PNG (lossless; each row checked to decode to the same pixels): Pillow at compress level 4 (what
ComfyUI and this project used before) and 1, against ``engine/png.py`` with ISA-L and with zlib,
on a photo (RGB) and a cut-out (RGBA, transparent background). Then the blur-fusion foreground
estimate of BiRefNet's node on one thread and on the pool (the same bits). Medians in ms, in
the same run.

    python benchmarks/png_encode.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from visionatrix.engine import parallel, png  # noqa: E402
from visionatrix.engine.nets.foreground import estimate_foreground  # noqa: E402


def images() -> dict[str, np.ndarray]:
    from skimage import data

    photo = np.asarray(Image.fromarray(data.astronaut()).resize((1024, 1024)))
    coffee = np.asarray(Image.fromarray(data.coffee()).resize((1024, 1024)))
    alpha = np.zeros((1024, 1024), np.uint8)
    alpha[200:900, 250:800] = 255
    return {"photo RGB": photo, "cut-out RGBA": np.dstack([coffee * (alpha[..., None] > 0), alpha])}


def median_ms(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    result = fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000, result


def pillow(pixels: np.ndarray, level: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG", compress_level=level)
    return buffer.getvalue()


def encoders() -> dict[str, Callable[[np.ndarray], bytes]]:
    from isal import isal_zlib

    return {
        "Pillow, compress level 4 (before)": lambda p: pillow(p, 4),
        "Pillow, compress level 1": lambda p: pillow(p, 1),
        "engine/png.py, ISA-L (after)": lambda p: png.encode_png(p, isal_zlib),
        "engine/png.py, zlib (no isal)": lambda p: png.encode_png(p, zlib),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"{parallel.threads()} threads in the pool")
    for name, pixels in images().items():
        print(f"\n{name}, 1024x1024")
        base = None
        for label, encode in encoders().items():
            ms, data = median_ms(lambda encode=encode, pixels=pixels: encode(pixels), args.repeats)
            decoded = np.asarray(Image.open(io.BytesIO(data)))
            assert np.array_equal(decoded, pixels), label
            base = base or ms
            print(
                f"  {label:36} {ms:7.1f} ms  {len(data) / 1e6:5.2f} MB  {base / ms:5.1f}x faster than before"
            )
    rng = np.random.default_rng(0)
    rgb = rng.random((1024, 1024, 3), dtype=np.float32)
    alpha = np.clip(rng.normal(0.5, 0.5, (1024, 1024)), 0, 1).astype(np.float32)
    one, first = median_ms(lambda: estimate_foreground(rgb, alpha, workers=1), max(1, args.repeats // 2))
    pool, second = median_ms(lambda: estimate_foreground(rgb, alpha), max(1, args.repeats // 2))
    assert np.array_equal(first, second)
    print("\nBiRefNet cut-out colour (blur fusion), 1024x1024")
    print(f"  one thread (as before)                {one:7.1f} ms")
    print(f"  {parallel.threads()} threads, same bits (after)        {pool:7.1f} ms  {one / pool:5.1f}x")


if __name__ == "__main__":
    main()
