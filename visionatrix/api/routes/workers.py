"""/vapi/workers: who is pulling tasks, and which flows each may take."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from visionatrix.api.deps import CurrentUser, SessionDep
from visionatrix.schemas import WorkerSettings
from visionatrix.tasks import workers

router = APIRouter(prefix="/vapi/workers", tags=["workers"])


@router.get("/info")
async def info(session: SessionDep, user: CurrentUser) -> list[dict[str, Any]]:
    return await workers.listing(session, user)


@router.post("/settings", status_code=204)
async def settings(body: WorkerSettings, session: SessionDep, user: CurrentUser) -> None:
    await workers.set_tasks_to_give(session, user, body.worker_id, body.tasks_to_give)
