"""The one table that maps domain errors to HTTP statuses and ``{"detail": ...}`` bodies."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from visionatrix import errors

STATUS: list[tuple[type[errors.VixError], int]] = [
    (errors.FlowNotInstalled, 404),
    (errors.NotFound, 404),
    (errors.InvalidInput, 400),
    # Visionatrix answers 400 when a task's state refuses a change (restart, priority)
    (errors.InvalidTransition, 400),
    (errors.Conflict, 409),
    (errors.Unauthorized, 401),
    (errors.Forbidden, 403),
    (errors.ModelMissing, 409),
    (errors.ModelDownloadError, 502),
    (errors.Cancelled, 409),
    (errors.TooLarge, 413),
    (errors.TooManyAttempts, 429),
    (errors.StorageFull, 507),
    (errors.TaskFailed, 422),
    (errors.TimedOut, 504),
    (errors.NodeError, 500),
    (errors.ProviderNotConfigured, 412),
    (errors.ProviderTimeout, 504),
    (errors.ProviderError, 502),
]


def status_for(exc: errors.VixError) -> int:
    return next((code for cls, code in STATUS if isinstance(exc, cls)), 500)


async def _handle(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.VixError)
    code = status_for(exc)
    headers = {"WWW-Authenticate": "Basic"} if code == 401 else None
    if isinstance(exc, errors.TooManyAttempts):
        headers = {"Retry-After": str(exc.retry_after)}
    return JSONResponse({"detail": exc.message}, status_code=code, headers=headers)


def install(app: FastAPI) -> None:
    app.add_exception_handler(errors.VixError, _handle)
