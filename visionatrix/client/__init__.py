"""Python SDK for a Visionatrix server: create tasks, follow them, download results; the worker API too.

Installs with httpx alone. ``Client`` is synchronous, ``AsyncClient`` its async twin::

    from visionatrix.client import Client

    with Client("http://localhost:8288") as vix:
        done = vix.run("invert_image", files={"input_image": "photo.png"}, timeout=120)
        for file in done.files:
            file.save("out")
"""

from visionatrix.client._async import AsyncClient
from visionatrix.client._client import Client
from visionatrix.client._types import BackgroundRemoval, ResultFile, RunResult
from visionatrix.client.errors import (
    ClientError,
    Conflict,
    Forbidden,
    InvalidInput,
    InvalidResponse,
    NotFound,
    ServerError,
    ServiceUnavailable,
    TaskFailed,
    Timeout,
    Unauthorized,
)

__all__ = [
    "AsyncClient",
    "BackgroundRemoval",
    "Client",
    "ClientError",
    "Conflict",
    "Forbidden",
    "InvalidInput",
    "InvalidResponse",
    "NotFound",
    "ResultFile",
    "RunResult",
    "ServerError",
    "ServiceUnavailable",
    "TaskFailed",
    "Timeout",
    "Unauthorized",
]
