"""Request bodies within limits.

Multipart forms are parsed as they stream in: a file part goes to a temporary file (never held
whole in memory) and is refused with 413 once it passes ``VIX_MAX_UPLOAD_MB``, whatever field it
is under; a text part is refused past ``VIX_MAX_TEXT_KB``. Any other body (JSON, url-encoded
forms) is refused past a small fixed size by ``BodyLimit`` before a route reads it.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass

from starlette.datastructures import FormData, Headers
from starlette.exceptions import HTTPException
from starlette.formparsers import FormParser, MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from visionatrix.errors import InvalidInput, StorageFull, TooLarge


@dataclass(frozen=True)
class UploadLimits:
    max_file_bytes: int = 64 * 1024 * 1024
    max_text_bytes: int = 64 * 1024
    max_files: int = 16
    max_fields: int = 256

    def file_too_large(self, field: str) -> TooLarge:
        mb = self.max_file_bytes / 2**20
        return TooLarge(f"file part '{field}' is larger than {mb:g} MB (VIX_MAX_UPLOAD_MB)")

    def text_too_large(self, field: str) -> TooLarge:
        kb = self.max_text_bytes / 1024
        return TooLarge(f"field '{field}' is longer than {kb:g} KiB (VIX_MAX_TEXT_KB)")


class _MultiPart(MultiPartParser):
    def __init__(self, headers: Headers, request: Request, limits: UploadLimits) -> None:
        super().__init__(
            headers,
            request.stream(),
            max_files=limits.max_files,
            max_fields=limits.max_fields,
            max_part_size=limits.max_text_bytes,
        )
        self.limits = limits
        self._part_bytes = 0

    def on_part_begin(self) -> None:
        super().on_part_begin()
        self._part_bytes = 0

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        self._part_bytes += end - start
        part = self._current_part
        if part.file is not None and self._part_bytes > self.limits.max_file_bytes:
            raise self.limits.file_too_large(part.field_name)
        if part.file is None and self._part_bytes > self.limits.max_text_bytes:
            raise self.limits.text_too_large(part.field_name)
        super().on_part_data(data, start, end)


class _UrlEncoded(FormParser):
    def __init__(self, headers: Headers, request: Request, limits: UploadLimits) -> None:
        super().__init__(headers, request.stream(), max_fields=limits.max_fields, max_part_size=2**62)
        self.limits = limits

    def on_field_data(self, data: bytes, start: int, end: int) -> None:
        if len(self._field_value) + end - start > self.limits.max_text_bytes:
            raise self.limits.text_too_large(self._field_name.decode("latin-1"))
        super().on_field_data(data, start, end)


async def read_form(request: Request, limits: UploadLimits) -> FormData:
    """The request's form (multipart or url-encoded) within ``limits``; close it when done."""
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind == "multipart/form-data":
        parser: _MultiPart | _UrlEncoded = _MultiPart(request.headers, request, limits)
    elif kind in ("application/x-www-form-urlencoded", ""):
        parser = _UrlEncoded(request.headers, request, limits)
    else:
        raise InvalidInput(f"expected a multipart/form-data body, got {kind!r}")
    try:
        return await parser.parse()
    except MultiPartException as exc:
        raise InvalidInput(f"malformed form: {exc.message}") from None
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StorageFull("no space left for the upload's temporary files") from exc
        raise


class BodyLimit:
    """Refuse (413) any body but a multipart form beyond ``max_bytes``: JSON and url-encoded
    bodies are read whole into memory by whoever parses them."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if headers.get("content-type", "").lower().startswith("multipart/form-data"):
            await self.app(scope, receive, send)  # bounded part by part in read_form
            return
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await _refuse(self.max_bytes, scope, receive, send)
            return
        await self.app(scope, self._counting(receive), send)

    def _counting(self, receive: Receive) -> Receive:
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                # an HTTPException passes FastAPI's body parsing untouched and becomes the answer
                raise HTTPException(413, _too_long(self.max_bytes))
            return message

        return counted


def _too_long(max_bytes: int) -> str:
    return f"request body is larger than {max_bytes // 1024} KiB"


async def _refuse(max_bytes: int, scope: Scope, receive: Receive, send: Send) -> None:
    await JSONResponse({"detail": _too_long(max_bytes)}, status_code=413)(scope, receive, send)


def upload_limits(max_upload_mb: float, max_text_kb: float, max_files: int) -> UploadLimits:
    return UploadLimits(
        max_file_bytes=int(max_upload_mb * 2**20), max_text_bytes=int(max_text_kb * 1024), max_files=max_files
    )
