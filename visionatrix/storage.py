"""The data folder: task inputs and outputs as files, named by task id and node id."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from visionatrix.errors import InvalidInput, NotFound

_SAFE_EXT = re.compile(r"^[a-z0-9]{1,8}$")


class Storage:
    def __init__(self, base_dir: Path) -> None:
        self.base_dir = base_dir.resolve()
        self.input_dir = self.base_dir / "input"
        self.output_dir = self.base_dir / "output"
        self.input_dir.mkdir(parents=True, exist_ok=True)
        self.output_dir.mkdir(parents=True, exist_ok=True)

    def save_input(self, task_id: int, index: int, data: bytes, ext: str) -> str:
        name = f"{task_id}_{index}.{_ext(ext)}"
        _write_atomic(self.input_dir / name, data)
        return name

    def input_path(self, file_name: str) -> Path:
        path = self.input_dir / Path(file_name).name
        if not path.is_file():
            raise NotFound(f"input file {file_name} not found")
        return path

    def save_output(self, task_id: int, node_id: int, index: int, data: bytes, ext: str) -> Path:
        path = self.output_dir / f"{task_id}_{node_id}_{index}.{_ext(ext)}"
        _write_atomic(path, data)
        return path

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

    def copy_to_input(self, source: Path, task_id: int, index: int) -> str:
        name = f"{task_id}_{index}{source.suffix.lower() or '.bin'}"
        tmp = self.input_dir / f".{name}.tmp"
        shutil.copyfile(source, tmp)
        os.replace(tmp, self.input_dir / name)
        return name


def _ext(ext: str) -> str:
    ext = ext.lower().lstrip(".")
    if not _SAFE_EXT.match(ext):
        raise InvalidInput(f"unsupported file extension {ext!r}")
    return ext


def _write_atomic(path: Path, data: bytes) -> None:
    # A reader never sees half a file: results become visible only when complete.
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
