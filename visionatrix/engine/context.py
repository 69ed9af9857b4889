"""What a node may touch while it runs: progress, cancel, models, files, device. Nothing else."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from visionatrix.errors import Cancelled

T = TypeVar("T")


class ModelStore(Protocol):
    """Where nodes find model files and keep loaded models between tasks."""

    def path(self, folder: str, filename: str) -> Path:
        """The on-disk path of a model file; raises ``ModelMissing`` naming where to put it."""
        ...

    def cached(self, key: str, load: Callable[[], T], size_bytes: int | None = None) -> T:
        """The object cached under ``key``, loading (and possibly evicting others) on a miss."""
        ...


@dataclass
class RunEnv:
    """Shared by every node of one graph run."""

    models: ModelStore
    input_dir: Path
    output_dir: Path
    tmp_dir: Path
    on_progress: Callable[[str, float], None] = lambda node_id, fraction: None
    cancel: threading.Event = field(default_factory=threading.Event)
    device: str = "cpu"
    # "auto" lets each model node choose (bf16 on capable CPUs, fp16 on CUDA); else a torch dtype name
    precision: str = "auto"
    outputs: dict[str, list[Path]] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    # progress of the whole graph run, 0.0..1.0, monotonic; the executor calls it
    on_overall: Callable[[float], None] = lambda fraction: None


@dataclass
class NodeContext:
    env: RunEnv
    node_id: str
    class_type: str

    @property
    def models(self) -> ModelStore:
        return self.env.models

    @property
    def device(self) -> str:
        return self.env.device

    @property
    def precision(self) -> str:
        return self.env.precision

    @property
    def input_dir(self) -> Path:
        return self.env.input_dir

    @property
    def output_dir(self) -> Path:
        return self.env.output_dir

    @property
    def tmp_dir(self) -> Path:
        return self.env.tmp_dir

    def progress(self, fraction: float) -> None:
        """Report progress within this node, 0.0..1.0. Also a cancel point."""
        self.check_cancel()
        self.env.on_progress(self.node_id, max(0.0, min(1.0, fraction)))

    def check_cancel(self) -> None:
        if self.env.cancel.is_set():
            raise Cancelled()

    def add_output(self, path: Path) -> None:
        """Record a file this output node wrote (in ``output_dir``)."""
        self.env.outputs.setdefault(self.node_id, []).append(path)
