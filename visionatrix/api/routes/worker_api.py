"""The worker API: workers pull tasks over HTTP, report progress, upload results."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from visionatrix import llm_settings
from visionatrix.api.deps import CurrentUser, ServicesDep, SessionDep
from visionatrix.errors import InvalidInput
from visionatrix.schemas import NextTaskRequest, ProgressUpdate, WorkerDetails
from visionatrix.tasks.requests import UploadedFile

router = APIRouter(prefix="/vapi/tasks", tags=["worker"])

# a long poll ends before common proxies' 60 s idle timeouts
MAX_WAIT = 55.0


@router.post("/next", response_model=None)
async def next_task(
    body: NextTaskRequest,
    services: ServicesDep,
    user: CurrentUser,
    wait: float = Query(0.0, ge=0.0, le=MAX_WAIT, description="long-poll up to this many seconds for a task"),
) -> dict[str, Any] | Response:
    task = await services.queue.claim(user, body, wait)
    if task is None:
        return Response(status_code=204)
    async with services.sessions() as session:
        # a graph with LLM nodes needs the provider settings on the worker
        return await llm_settings.attach_to_claim(session, user, task)


@router.put("/progress", status_code=204)
async def progress(
    body: ProgressUpdate, services: ServicesDep, session: SessionDep, user: CurrentUser
) -> None:
    await services.queue.report(session, user, body)
    if body.error:
        services.finished.fire()


@router.put("/results", status_code=204)
async def results(
    request: Request, services: ServicesDep, session: SessionDep, user: CurrentUser, task_id: int
) -> None:
    form = await request.form(max_part_size=512 * 1024 * 1024)
    try:
        files = [
            UploadedFile(part.filename or "", await part.read(), part.content_type or "")
            for key, part in form.multi_items()
            if key == "files" and isinstance(part, UploadFile)
        ]
        details = _details(form.get("worker_details"))
        execution_time = _seconds(form.get("execution_time"))
    finally:
        await form.close()
    if not files:
        raise InvalidInput("no result files: send them as repeated 'files' parts")
    await services.queue.complete(session, user, details, task_id, files, execution_time)
    services.finished.fire()


@router.delete("/lock", status_code=204)
async def release_lock(
    services: ServicesDep, session: SessionDep, user: CurrentUser, task_id: int, request: Request
) -> None:
    details = _details(request.headers.get("x-worker-details"))
    await services.queue.release(session, user, details, task_id)


def _details(raw: object) -> WorkerDetails | None:
    if not isinstance(raw, str) or not raw:
        return None
    try:
        return WorkerDetails.model_validate(json.loads(raw))
    except (json.JSONDecodeError, ValidationError) as exc:
        raise InvalidInput(f"worker_details is not a valid JSON object: {exc}") from None


def _seconds(raw: object) -> float | None:
    """The optional ``execution_time`` form field (an extension: the run's time, sent with the results)."""
    if raw is None:
        return None
    try:
        seconds = float(str(raw))
    except ValueError:
        seconds = -1.0
    if not 0.0 <= seconds < 1e9:
        raise InvalidInput(f"execution_time must be a number of seconds, got {str(raw)[:40]!r}")
    return seconds
