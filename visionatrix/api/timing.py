"""``Server-Timing: app;dur=<ms>`` on every answer: the time the server spent on the request.

A client (the worker's stage profile, a browser's network panel) can then tell the server's share
of a round trip from the network's and its own. A long poll's duration includes its wait.
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class ServerTiming:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()

        async def timed(message: Message) -> None:
            if message["type"] == "http.response.start":
                millis = (time.perf_counter() - start) * 1000.0
                headers = [*message.get("headers", ()), (b"server-timing", b"app;dur=%.2f" % millis)]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, timed)
