"""Loaded models kept between tasks: a thread-safe LRU bounded by bytes.

The second task of a flow should pay only inference, so nodes load through
``ModelStore.cached(key, load)``. The store counts each object's size (told, or estimated:
torch parameters and buffers, ``nbytes`` of arrays, else the size of the model files ``load``
opened through ``path()``) and evicts the least recently used objects once the total passes
the budget. A single object larger than the budget is still kept: refusing it would only
make every task load it again.
"""

from __future__ import annotations

import gc
import logging
import os
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from visionatrix.errors import ModelMissing

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_RAM_FRACTION = 0.6
_FALLBACK_RAM = 8 << 30
_COLLECT_FROM_BYTES = 64 << 20


@dataclass
class _Slot:
    value: Any
    size: int


class ModelStore:
    """Model files under ``models_dir`` and the cache of what was loaded from them."""

    def __init__(self, models_dir: Path, budget_bytes: int | None = None) -> None:
        self.models_dir = Path(models_dir)
        self.budget_bytes = budget_bytes or default_budget()
        self._slots: OrderedDict[str, _Slot] = OrderedDict()
        self._lock = threading.Lock()
        self._key_locks: dict[str, threading.Lock] = {}
        self._opened = threading.local()  # files resolved by path() during the current load()

    # ------------------------------------------------------------------ files

    def path(self, folder: str, filename: str) -> Path:
        """``MODELS_DIR/<folder>/<filename>``; raises ``ModelMissing`` naming it when absent."""
        where = self.models_dir / folder / filename if folder else self.models_dir / filename
        if not where.is_file():
            raise ModelMissing([(filename, str(where))])
        opened = getattr(self._opened, "paths", None)
        if opened is not None:
            opened.append(where)
        return where

    # ------------------------------------------------------------------ cache

    def cached(self, key: str, load: Callable[[], T], size_bytes: int | None = None) -> T:
        """The object under ``key``; on a miss ``load()`` it (once, even if threads race) and keep it."""
        hit, value = self._get(key)
        if hit:
            return value  # type: ignore[no-any-return]
        with self._key_lock(key):
            hit, value = self._get(key)
            if hit:
                return value  # type: ignore[no-any-return]
            value, opened = self._load(load)
            size = size_bytes if size_bytes is not None else estimate_size(value, opened)
            self._put(key, value, size)
            return value

    def __contains__(self, key: str) -> bool:
        with self._lock:
            return key in self._slots

    def keys(self) -> list[str]:
        """Cached keys, least recently used first."""
        with self._lock:
            return list(self._slots)

    @property
    def used_bytes(self) -> int:
        with self._lock:
            return sum(s.size for s in self._slots.values())

    def evict(self, key: str) -> bool:
        with self._lock:
            slot = self._slots.pop(key, None)
        if slot is not None:
            _release([slot])
        return slot is not None

    def clear(self) -> None:
        with self._lock:
            slots = list(self._slots.values())
            self._slots.clear()
        _release(slots)

    def _get(self, key: str) -> tuple[bool, Any]:
        with self._lock:
            slot = self._slots.get(key)
            if slot is None:
                return False, None
            self._slots.move_to_end(key)
            return True, slot.value

    def _key_lock(self, key: str) -> threading.Lock:
        with self._lock:
            return self._key_locks.setdefault(key, threading.Lock())

    def _load(self, load: Callable[[], T]) -> tuple[T, list[Path]]:
        outer = getattr(self._opened, "paths", None)  # a load() may itself call cached()
        opened: list[Path] = []
        self._opened.paths = opened
        try:
            return load(), opened
        finally:
            self._opened.paths = outer

    def _put(self, key: str, value: Any, size: int) -> None:
        with self._lock:
            self._slots[key] = _Slot(value, size)
            self._slots.move_to_end(key)
            evicted = self._shrink(keep=key)
        if evicted:
            log.info(
                "model cache: evicted %s to stay within %d bytes", [k for k, _ in evicted], self.budget_bytes
            )
            slots = [s for _, s in evicted]
            del evicted  # _release must hold the last references
            _release(slots)

    def _shrink(self, keep: str) -> list[tuple[str, _Slot]]:
        """Pop least recently used slots (never ``keep``) until the total fits. Caller holds the lock."""
        evicted = []
        total = sum(s.size for s in self._slots.values())
        for key in list(self._slots):
            if total <= self.budget_bytes:
                break
            if key != keep:
                slot = self._slots.pop(key)
                total -= slot.size
                evicted.append((key, slot))
        return evicted


def _release(slots: list[_Slot]) -> None:
    """Drop the last references and give GPU memory back to the driver."""
    freed = sum(s.size for s in slots)
    slots.clear()
    if freed >= _COLLECT_FROM_BYTES:  # a full collection costs ~0.1 s with torch loaded: only for real models
        gc.collect()
    torch = sys.modules.get("torch")  # never import torch just to free memory it never held
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def default_budget(fraction: float = DEFAULT_RAM_FRACTION) -> int:
    return int(total_ram() * fraction)


def total_ram() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):  # not POSIX
        return _FALLBACK_RAM


def estimate_size(value: Any, files: list[Path] | None = None) -> int:
    """Bytes ``value`` holds: tensors/arrays it owns, else the size of the files it came from."""
    size = _object_bytes(value, depth=0)
    if size:
        return size
    return sum(p.stat().st_size for p in files or () if p.exists())


def _object_bytes(value: Any, depth: int) -> int:
    if depth > 3 or value is None:
        return 0
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.nn.Module):
        tensors = [*value.parameters(), *value.buffers()]
        return sum(t.numel() * t.element_size() for t in tensors)
    if isinstance(getattr(value, "nbytes", None), int):  # numpy arrays, torch tensors
        return int(value.nbytes)
    if isinstance(value, Mapping):
        return sum(_object_bytes(v, depth + 1) for v in value.values())
    if isinstance(value, list | tuple):
        return sum(_object_bytes(v, depth + 1) for v in value)
    components = getattr(value, "components", None)  # diffusers pipelines
    if isinstance(components, Mapping):
        return _object_bytes(components, depth + 1)
    return 0
