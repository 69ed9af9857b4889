"""The data folder: task inputs and outputs as files, named by task id and node id.

Files are written beside their final name and renamed into place, so a reader never sees half
a file; a write that fails (a full disk) leaves nothing behind and says so (``StorageFull``).
Writes block: the async callers run them in a thread.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import IO

from visionatrix.errors import InvalidInput, NotFound, StorageFull

_SAFE_EXT = re.compile(r"^[a-z0-9]{1,8}$")
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class Storage:
    def __init__(self, base_dir: Path) -> None:
        self.base_dir = base_dir.resolve()
        self.input_dir = self.base_dir / "input"
        self.output_dir = self.base_dir / "output"
        self.input_dir.mkdir(parents=True, exist_ok=True)
        self.output_dir.mkdir(parents=True, exist_ok=True)

    def save_input(self, task_id: int, index: int, source: IO[bytes], ext: str) -> tuple[str, int]:
        """Store an uploaded input; its file name and size."""
        name = f"{task_id}_{index}.{_ext(ext)}"
        size = _write_atomic(self.input_dir / name, lambda out: _copy_stream(source, out))
        return name, size

    def input_path(self, file_name: str) -> Path:
        path = self.input_dir / Path(file_name).name
        if not path.is_file():
            raise NotFound(f"input file {file_name} not found")
        return path

    def save_output(self, task_id: int, node_id: int, index: int, source: IO[bytes], ext: str) -> int:
        """Store one result file; its size."""
        path = self.output_dir / f"{task_id}_{node_id}_{index}.{_ext(ext)}"
        return _write_atomic(path, lambda out: _copy_stream(source, out))

    def output_files(self, task_id: int, node_id: int) -> list[Path]:
        prefix = f"{task_id}_{node_id}_"
        found = [
            p for p in self.output_dir.glob(f"{prefix}*") if p.name[len(prefix) :].split(".")[0].isdigit()
        ]
        return sorted(found, key=lambda p: int(p.name[len(prefix) :].split(".")[0]))

    def delete_outputs(self, task_id: int) -> None:
        for path in self.output_dir.glob(f"{task_id}_*"):
            path.unlink(missing_ok=True)

    def delete_task_files(self, task_id: int) -> None:
        self.delete_outputs(task_id)
        for path in self.input_dir.glob(f"{task_id}_*"):
            path.unlink(missing_ok=True)

    def copy_to_input(self, source: Path, task_id: int, index: int) -> tuple[str, int]:
        """Store another task's file as this task's input; its file name and size."""
        name = f"{task_id}_{index}{source.suffix.lower() or '.bin'}"

        def copy(out: IO[bytes]) -> int:
            with source.open("rb") as src:
                return _copy_stream(src, out)

        return name, _write_atomic(self.input_dir / name, copy)


def _ext(ext: str) -> str:
    ext = ext.lower().lstrip(".")
    if not _SAFE_EXT.match(ext):
        raise InvalidInput(f"unsupported file extension {ext!r}")
    return ext


def _copy_stream(source: IO[bytes], out: IO[bytes]) -> int:
    source.seek(0)
    size = 0
    while chunk := source.read(1024 * 1024):
        out.write(chunk)
        size += len(chunk)
    return size


def _write_atomic(path: Path, fill: Callable[[IO[bytes]], int]) -> int:
    # A reader never sees half a file: results become visible only when complete.
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with tmp.open("wb") as out:
            size = fill(out)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if exc.errno in _NO_SPACE:
            raise StorageFull(f"no space left in the data folder to store {path.name}") from exc
        raise
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return size
