"""Result objects the SDK returns: plain frozen dataclasses, no behaviour beyond saving a file."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ResultFile:
    """One output file of a task: output node ``node_id``, image ``batch_index`` of its batch."""

    node_id: int
    batch_index: int
    content: bytes = field(repr=False)
    content_type: str
    filename: str

    def save(self, directory: str | Path) -> Path:
        """Write the file into ``directory`` (created if missing) and return its path."""
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        # The name may come from the server's Content-Disposition: keep only its last part.
        path = folder / Path(self.filename).name
        path.write_bytes(self.content)
        return path


@dataclass(frozen=True)
class RunResult:
    """What :meth:`Client.run` returns: the finished task and all of its output files."""

    task_id: int
    task: dict[str, Any]
    files: list[ResultFile]


@dataclass(frozen=True)
class BackgroundRemoval:
    """A cut-out image, or the original image with the reason the cut-out could not be made."""

    image: bytes = field(repr=False)
    fell_back: bool
    fallback_reason: str | None = None
    task_id: int | None = None
