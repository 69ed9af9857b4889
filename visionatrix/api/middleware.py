"""ASGI middleware that guards every answer: same-origin writes, safe response headers, ``Allow``.

- ``SameOrigin``: a browser on another site can send a "simple" POST to this server (a form,
  ``fetch`` without preflight) and its user's credentials may ride along. As ComfyUI's origin
  check does, a state-changing request whose ``Origin`` names another host than the one it was
  sent to (``Host``, or ``X-Forwarded-Host`` from a proxy) is refused with 403; so is one the
  browser marks ``Sec-Fetch-Site: cross-site``. Requests without ``Origin`` (any non-browser
  client) pass.
- ``SecurityHeaders``: ``X-Content-Type-Options: nosniff`` and a frame-ancestors policy
  (``X-Frame-Options`` and CSP ``frame-ancestors 'self'``) on every answer.
- ``AllowedMethods``: a 405 names every method the path serves, across all routes sharing it.
"""

from __future__ import annotations

import functools
import re
import urllib.parse
from collections.abc import Callable
from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_FRAMES = "frame-ancestors 'self'"


class SameOrigin:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in _SAFE_METHODS:
            refusal = cross_origin(Headers(scope=scope))
            if refusal:
                await JSONResponse({"detail": refusal}, status_code=403)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def cross_origin(headers: Headers) -> str | None:
    """Why this state-changing request is refused as cross-origin; None when it may pass."""
    if headers.get("sec-fetch-site", "").lower() == "cross-site":
        return "cross-site request refused (Sec-Fetch-Site: cross-site)"
    origin = headers.get("origin")
    if origin is None:
        return None
    parsed = urllib.parse.urlsplit(origin.strip().lower())
    if not parsed.hostname:
        return f"cross-origin request refused: Origin {origin!r} names no host"
    hosts = [h for h in (headers.get("x-forwarded-host", ""), headers.get("host", "")) if h]
    if any(_same_host(parsed, host) for host in hosts):
        return None
    return f"cross-origin request refused: Origin {origin!r} does not match Host {headers.get('host', '')!r}"


def _same_host(origin: urllib.parse.SplitResult, host: str) -> bool:
    served = urllib.parse.urlsplit("//" + host.split(",")[0].strip().lower())
    try:
        origin_port, served_port = origin.port, served.port
    except ValueError:
        return False
    if origin.hostname != served.hostname:
        return False
    # a side without a port (a proxy's default one) is compared by host name alone, as ComfyUI does
    return origin_port is None or served_port is None or origin_port == served_port


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_guarded(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("X-Frame-Options", "SAMEORIGIN")
                policy = headers.get("Content-Security-Policy")
                if policy is None:
                    headers["Content-Security-Policy"] = _FRAMES
                elif "frame-ancestors" not in policy:
                    headers["Content-Security-Policy"] = f"{policy}; {_FRAMES}"
            await send(message)

        await self.app(scope, receive, send_guarded)


class AllowedMethods:
    """Starlette names only the first route matching a path in a 405's ``Allow``; name every
    method the API description gives the path."""

    def __init__(self, app: ASGIApp, spec: Callable[[], dict[str, Any]]) -> None:
        self.app = app
        self.spec = spec

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_allowed(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 405:
                methods = self._methods(scope["path"])
                if methods:
                    MutableHeaders(scope=message)["Allow"] = ", ".join(methods)
            await send(message)

        await self.app(scope, receive, send_allowed)

    def _methods(self, path: str) -> list[str]:
        found: set[str] = set()
        for template, item in self.spec().get("paths", {}).items():
            if _template(template).fullmatch(path):
                found |= {method.upper() for method in item if method in _HTTP_METHODS}
        return sorted(found)


_HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


@functools.lru_cache(maxsize=512)
def _template(path: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path)))
