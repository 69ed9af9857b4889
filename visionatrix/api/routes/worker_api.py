"""The worker API: workers pull tasks over HTTP, report progress, upload results."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from visionatrix import llm_settings, remote_vae_switch
from visionatrix.api.deps import CurrentUser, ServicesDep, SessionDep
from visionatrix.api.forms import multipart_body, uploaded
from visionatrix.api.uploads import read_form, upload_limits
from visionatrix.errors import InvalidInput
from visionatrix.schemas import NextTaskRequest, ProgressUpdate, WorkerDetails

router = APIRouter(prefix="/vapi/tasks", tags=["worker"])

# a long poll ends before common proxies' 60 s idle timeouts
MAX_WAIT = 55.0


@router.post(
    "/next", response_model=None, responses={204: {"description": "no task for this worker (within `wait`)"}}
)
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
        task = await llm_settings.attach_to_claim(session, user, task)
        return await remote_vae_switch.attach_to_claim(session, task)


@router.put("/progress", status_code=204)
async def progress(
    body: ProgressUpdate, services: ServicesDep, session: SessionDep, user: CurrentUser
) -> None:
    await services.queue.report(session, user, body)


RESULTS_FORM = multipart_body(
    {
        "files": {
            "type": "array",
            "minItems": 1,
            "items": {"type": "string", "format": "binary"},
            "description": "one part per file, named <task_id>_<node_id>_<n>.<ext>",
        },
        "worker_details": {"type": "string", "description": "the worker's details as JSON"},
    },
    required=["files"],
)


@router.put("/results", status_code=204, openapi_extra=RESULTS_FORM)
async def results(
    request: Request, services: ServicesDep, session: SessionDep, user: CurrentUser, task_id: int
) -> None:
    config = services.config
    form = await read_form(request, upload_limits(config.max_upload_mb, config.max_text_kb, max_files=256))
    try:
        files = [
            uploaded(part)
            for key, part in form.multi_items()
            if key == "files" and isinstance(part, UploadFile)
        ]
        if not files:
            raise InvalidInput("no result files: send them as repeated 'files' parts")
        details = _details(form.get("worker_details"))
        execution_time = _seconds(form.get("execution_time"))
        await services.queue.complete(session, user, details, task_id, files, execution_time)
    finally:
        await form.close()


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
    except (json.JSONDecodeError, RecursionError, ValidationError) as exc:
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
