"""One thread pool for array work that releases the GIL (numpy ufuncs, scipy.ndimage, deflate).

Work is cut into independent strips whose results are exactly those of one call over the whole:
element-wise operations split by rows, filters along an axis split across the other axis.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import TypeVar

T = TypeVar("T")

MAX_THREADS = 16


def usable_cpus() -> int:
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


@cache
def pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(min(MAX_THREADS, usable_cpus()), thread_name_prefix="vix-array")


def threads() -> int:
    return pool()._max_workers


def strips(length: int, count: int) -> list[slice]:
    """``length`` cut into at most ``count`` contiguous, nearly equal slices."""
    count = max(1, min(count, length))
    edges = [round(i * length / count) for i in range(count + 1)]
    return [slice(edges[i], edges[i + 1]) for i in range(count)]


def run_all(fn: Callable[[slice], T], parts: list[slice]) -> list[T]:
    """``fn`` over ``parts`` on the pool (inline when there is one part); results in order."""
    if len(parts) == 1:
        return [fn(parts[0])]
    return list(pool().map(fn, parts))
