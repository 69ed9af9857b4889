"""A real HTTP file server on a free local port, for download tests.

It serves in-memory files with ``Range`` support, answers ``HEAD`` with the headers the Hugging
Face Hub sends (``X-Repo-Commit``, ``ETag``), ``304`` to a matching ``If-None-Match``, logs every
request, and can misbehave on purpose: ignore ``Range`` or cut the connection after a number of bytes.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

from visionatrix.testing.loopback import Loopback

_RANGE = re.compile(r"bytes=(\d+)-(\d*)$")
REPO_COMMIT = "0123456789abcdef0123456789abcdef01234567"
_SLOW_CHUNK = 256 * 1024


@dataclass
class ServedFile:
    data: bytes
    ignore_range: bool = False
    cut_after: int | None = None  # bytes of body sent before the connection drops; None: all
    status: int = 200  # anything else: answer with this error status
    chunk_delay: float = 0.0  # seconds to pause after each 256 KiB of body: a slow link, for progress bars


@dataclass
class Request:
    method: str
    path: str
    range: str | None
    if_none_match: str | None = None


@dataclass
class FileServer:
    files: dict[str, ServedFile] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._loopback = Loopback(_handler_for(self))

    @property
    def base_url(self) -> str:
        return self._loopback.url

    def url(self, path: str) -> str:
        return self.base_url + path

    def add(self, path: str, data: bytes, **options: object) -> str:
        self.files[path] = ServedFile(data, **options)  # type: ignore[arg-type]
        return self.url(path)

    def __enter__(self) -> FileServer:
        self._loopback.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._loopback.stop()


def _etag(served: ServedFile) -> str:
    return f'"{hashlib.sha256(served.data).hexdigest()}"'


def _handler_for(server: FileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_HEAD(self) -> None:  # noqa: N802 (http.server's naming)
            self._answer(body=False)

        def do_GET(self) -> None:  # noqa: N802
            self._answer(body=True)

        def log_message(self, format: str, *args: object) -> None:  # keep test output clean
            pass

        def _answer(self, body: bool) -> None:
            path = self.path.split("?", 1)[0]
            server.requests.append(
                Request(self.command, path, self.headers.get("Range"), self.headers.get("If-None-Match"))
            )
            served = server.files.get(path)
            if served is None or served.status != 200:
                self._empty(404 if served is None else served.status)
                return
            if self.headers.get("If-None-Match") == _etag(served):
                self._empty(304)
                return
            start, end = self._range(served)
            if start is None:
                return
            self._send_headers(served, start, end)
            if body:
                self._send_body(served, start, end)

        def _range(self, served: ServedFile) -> tuple[int | None, int]:
            size = len(served.data)
            m = _RANGE.match(self.headers.get("Range") or "")
            if m is None or served.ignore_range:
                return 0, size
            start = int(m.group(1))
            if start >= size:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None, 0
            return start, min(size, int(m.group(2)) + 1) if m.group(2) else size

        def _send_headers(self, served: ServedFile, start: int, end: int) -> None:
            size = len(served.data)
            partial = (start, end) != (0, size)
            self.send_response(206 if partial else 200)
            if partial:
                self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
            self.send_header("Content-Length", str(end - start))
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("ETag", _etag(served))
            self.send_header("X-Repo-Commit", REPO_COMMIT)
            self.end_headers()

        def _send_body(self, served: ServedFile, start: int, end: int) -> None:
            chunk = served.data[start:end]
            if served.cut_after is not None:
                self.wfile.write(chunk[: served.cut_after])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)
                return
            if not served.chunk_delay:
                self.wfile.write(chunk)
                return
            for offset in range(0, len(chunk), _SLOW_CHUNK):
                self.wfile.write(chunk[offset : offset + _SLOW_CHUNK])
                self.wfile.flush()
                time.sleep(served.chunk_delay)

        def _empty(self, status: int) -> None:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler
