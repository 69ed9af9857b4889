"""The ``worker_details`` a worker sends with every call (Visionatrix's fields plus ``worker_id``)."""

from __future__ import annotations

import os
import platform
import socket
import sys
from typing import Any

from visionatrix import __version__


def _ram() -> tuple[int, int]:
    try:
        info = dict(line.split(":", 1) for line in open("/proc/meminfo").read().splitlines() if ":" in line)
        total = int(info["MemTotal"].split()[0]) * 1024
        free = int(info.get("MemAvailable", info["MemFree"]).split()[0]) * 1024
        return total, free
    except (OSError, KeyError, ValueError):
        return 0, 0


def _devices(device: str) -> list[dict[str, Any]]:
    torch = sys.modules.get("torch")
    if device == "cuda" and torch is not None and torch.cuda.is_available():
        free, total = torch.cuda.mem_get_info(0)
        return [
            {
                "name": torch.cuda.get_device_name(0),
                "type": "cuda",
                "index": 0,
                "vram_total": total,
                "vram_free": free,
            }
        ]
    total, free = _ram()
    return [
        {
            "name": platform.processor() or "cpu",
            "type": "cpu",
            "index": 0,
            "vram_total": total,
            "vram_free": free,
        }
    ]


def worker_details(worker_id: str, device: str) -> dict[str, Any]:
    torch = sys.modules.get("torch")
    total, free = _ram()
    return {
        "worker_id": worker_id,
        "worker_version": __version__,
        "pytorch_version": getattr(torch, "__version__", ""),
        "system": {"hostname": socket.gethostname(), "os": platform.system(), "version": platform.release()},
        "devices": _devices(device),
        "ram_total": total,
        "ram_free": free,
    }


def default_worker_id(user: str) -> str:
    return f"{user or 'admin'}:{socket.gethostname()}:{os.getpid()}"
