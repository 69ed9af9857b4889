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

import urllib.parse

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Match
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
    """Starlette names only the first route matching a path in a 405's ``Allow``; name them all."""

    def __init__(self, app: ASGIApp, routes: list[BaseRoute]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_allowed(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 405:
                MutableHeaders(scope=message)["Allow"] = ", ".join(self._methods(scope))
            await send(message)

        await self.app(scope, receive, send_allowed)

    def _methods(self, scope: Scope) -> list[str]:
        found: set[str] = set()
        for route in self.routes:
            methods = getattr(route, "methods", None)
            if methods and route.matches(scope)[0] is not Match.NONE:
                found |= set(methods)
        return sorted(found)
