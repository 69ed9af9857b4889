"""Is a model file on disk the one the catalog means? Size first, then sha256, hashed only once.

Hashing a 7 GB checkpoint takes tens of seconds, so a verified file gets a small sidecar
``<file>.sha256`` recording the hash with the size and mtime it was computed for. While size
and mtime still agree, the sidecar stands in for re-hashing; touching the file invalidates it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

log = logging.getLogger(__name__)

SIDECAR_SUFFIX = ".sha256"
_CHUNK = 4 << 20


def sha256_file(path: Path, digest: hashlib._Hash | None = None) -> str:
    """The hex sha256 of ``path``; with ``digest`` given, feeds that one and returns its state."""
    h = digest or hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + SIDECAR_SUFFIX)


def remember_hash(path: Path, sha256: str) -> None:
    """Record that ``path``, as it is now, hashes to ``sha256``."""
    st = path.stat()
    record = {"sha256": sha256.lower(), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    try:
        sidecar_path(path).write_text(json.dumps(record), encoding="utf-8")
    except OSError as exc:  # a read-only models folder still works, it just re-hashes
        log.warning("cannot write %s: %s", sidecar_path(path), exc)


def remembered_hash(path: Path) -> str | None:
    """The sidecar's hash if it still describes ``path`` (same size and mtime), else None."""
    try:
        record = json.loads(sidecar_path(path).read_text(encoding="utf-8"))
        st = path.stat()
    except (OSError, ValueError):
        return None
    if (
        not isinstance(record, dict)
        or record.get("size") != st.st_size
        or record.get("mtime_ns") != st.st_mtime_ns
    ):
        return None
    value = record.get("sha256")
    return value if isinstance(value, str) else None


def file_matches(path: Path, *, sha256: str = "", size: int | None = None) -> bool:
    """True when ``path`` exists with the expected size and (when known) sha256."""
    try:
        st = path.stat()
    except OSError:
        return False
    if not path.is_file() or (size is not None and st.st_size != size):
        return False
    if not sha256:
        return True
    expected = sha256.lower()
    if remembered_hash(path) == expected:
        return True
    actual = sha256_file(path)
    if actual != expected:
        log.warning("%s: sha256 %s, catalog expects %s", path, actual, expected)
        return False
    remember_hash(path, actual)
    return True
