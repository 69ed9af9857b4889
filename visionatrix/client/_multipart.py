"""Turn task inputs and files into multipart parts, read once so a retry can send them again."""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any, TypeAlias

FormValue: TypeAlias = str | int | float | bool
FileInput: TypeAlias = bytes | str | Path | IO[bytes] | tuple[str, bytes]
# httpx's multipart item: (field name, (filename or None for a plain field, content, content type)).
Part: TypeAlias = tuple[str, tuple[str | None, bytes | str, str | None]]

_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", ".png"),
    (b"\xff\xd8\xff", ".jpg"),
    (b"GIF8", ".gif"),
    (b"RIFF", ".webp"),
)


def form_value(name: str, value: FormValue) -> str:
    """A flow input as the server's form expects it: booleans as 1/0, numbers as text."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, str | int | float):
        return str(value)
    raise TypeError(f"input {name!r}: expected str, int, float or bool, got {type(value).__name__}")


def file_part(name: str, value: FileInput) -> tuple[str, bytes, str]:
    """``(filename, content, content_type)`` for a file input given as bytes, path, file object or pair."""
    if isinstance(value, tuple):
        filename, content = value
    elif isinstance(value, bytes | bytearray | memoryview):
        content = bytes(value)
        filename = name + guess_extension(content)
    elif isinstance(value, str | Path):
        path = Path(value)
        filename, content = path.name, path.read_bytes()
    elif hasattr(value, "read"):
        content = _read_stream(name, value)
        filename = Path(str(getattr(value, "name", ""))).name or name + guess_extension(content)
    else:
        raise TypeError(f"file {name!r}: expected bytes, a path, a binary file or (filename, bytes)")
    return filename, content, content_type(filename)


def guess_extension(content: bytes) -> str:
    """The file extension for well-known image signatures, else ``.bin``."""
    for magic, extension in _MAGIC:
        if content.startswith(magic):
            return extension
    return ".bin"


def content_type(filename: str) -> str:
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


def task_parts(
    inputs: Mapping[str, FormValue] | None,
    files: Mapping[str, FileInput] | None,
    reserved: Mapping[str, Any],
) -> list[Part]:
    """All parts of a create-task request: reserved fields, text inputs, then files."""
    parts: list[Part] = [(key, (None, _reserved_value(value), None)) for key, value in reserved.items()]
    parts += [(key, (None, form_value(key, value), None)) for key, value in (inputs or {}).items()]
    parts += [(key, file_part(key, value)) for key, value in (files or {}).items()]
    return parts


def reserved_fields(**values: Any) -> dict[str, Any]:
    """The reserved create-task fields that were given (None means: leave to the server)."""
    return {key: value for key, value in values.items() if value is not None}


def _reserved_value(value: Any) -> str:
    if isinstance(value, Mapping):  # webhook_headers travel as a JSON object in a text field
        return json.dumps(dict(value))
    return form_value("reserved field", value)


def _read_stream(name: str, stream: Any) -> bytes:
    content = stream.read()
    if isinstance(content, str):
        raise TypeError(f"file {name!r}: open the file in binary mode ('rb')")
    return bytes(content)
