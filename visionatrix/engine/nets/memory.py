"""Will a model fit? Checked before loading, so a worker refuses a flow instead of being killed.

The operating system's OOM killer ends a worker that overcommits RAM without a word, and a CUDA
out-of-memory error mid-load leaves half a model behind. A loader of a large model therefore
states what it needs (weights at the dtypes they will be kept in, plus working memory) and asks
``ensure_fits`` first: the free memory of the device (``MemAvailable`` for the CPU, the driver's
free count for a GPU), after evicting least recently used models from the worker's cache if that
is what it takes. Short of that, ``NotEnoughMemory`` names the need, what is free and what to do.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from visionatrix.errors import NotEnoughMemory

log = logging.getLogger(__name__)


def free_bytes(device: str, meminfo: Path = Path("/proc/meminfo")) -> int | None:
    """Bytes free on ``device`` now, or ``None`` when this platform does not say."""
    if device.startswith("cuda"):
        import torch

        free, _total = torch.cuda.mem_get_info(torch.device(device))
        return int(free)
    try:
        text = meminfo.read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return None


def ensure_fits(what: str, needed: int, device: str, store: Any = None, hint: str = "") -> None:
    """Raise ``NotEnoughMemory`` unless ``needed`` bytes fit on ``device``, evicting cached models first.

    ``store`` is the worker's model cache; when it can evict (``keys()``/``evict(key)``), the least
    recently used models go one by one until the need fits or none is left.
    """
    free = free_bytes(device)
    log.info("%s: needs %.2f GiB on %s (free: %s)", what, needed / 1024**3, device, _gib(free))
    if free is None or free >= needed:
        return
    keys = getattr(store, "keys", None)
    evict = getattr(store, "evict", None)
    if callable(keys) and callable(evict):
        for key in keys():
            evict(key)
            free = free_bytes(device) or 0
            if free >= needed:
                log.info("%s: evicted cached models down to %s to make room", what, key)
                return
    raise NotEnoughMemory(what, needed, int(free or 0), device, hint)


def _gib(value: int | None) -> str:
    return "unknown" if value is None else f"{value / 1024**3:.2f} GiB"
