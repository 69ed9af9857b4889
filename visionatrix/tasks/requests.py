"""What a request carries once the HTTP layer has parsed it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import IO, Any


@dataclass(frozen=True)
class UploadedFile:
    """A file part, already streamed to a temporary file by the HTTP layer (never held whole in
    memory); ``file`` is positioned at its start."""

    filename: str
    file: IO[bytes]
    size: int
    content_type: str = ""


@dataclass(frozen=True)
class FileRef:
    """A file input given as another task's output (node_id) or input (input_index)."""

    task_id: int
    node_id: int | None = None
    input_index: int | None = None


@dataclass
class TaskRequest:
    values: dict[str, str] = field(default_factory=dict)
    files: dict[str, UploadedFile] = field(default_factory=dict)
    refs: dict[str, FileRef] = field(default_factory=dict)
    count: int = 1
    seed: int | None = None
    priority: int = 0
    group_scope: int = 1
    webhook_url: str | None = None
    webhook_headers: dict[str, Any] | None = None
    translate: bool = False
    child_task: bool = False
