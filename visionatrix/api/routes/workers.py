"""/vapi/workers: who is pulling tasks, and which flows each may take."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter

from visionatrix.api.deps import CurrentUser, SessionDep
from visionatrix.db import workers as db_workers
from visionatrix.db.tables import utcnow
from visionatrix.errors import NotFound
from visionatrix.schemas import WorkerSettings

router = APIRouter(prefix="/vapi/workers", tags=["workers"])

_ONLINE = timedelta(minutes=2)


@router.get("/info")
async def info(session: SessionDep, user: CurrentUser) -> list[dict[str, Any]]:
    rows = await db_workers.all_workers(session, None if user.is_admin else user.user_id)
    now = utcnow()
    return [
        {
            "worker_id": w.worker_id,
            "user_id": w.user_id,
            "last_seen": w.last_seen.isoformat(),
            "online": now - w.last_seen < _ONLINE,
            "state": "busy" if w.current_task_id else "idle",
            "current_task_id": w.current_task_id,
            "tasks_to_give": w.tasks_to_give,
            **{k: w.details.get(k) for k in ("worker_version", "pytorch_version", "system", "devices")},
            "device_name": (w.details.get("devices") or [{}])[0].get("name", ""),
            "ram_total": w.details.get("ram_total"),
            "ram_free": w.details.get("ram_free"),
        }
        for w in rows
    ]


@router.post("/settings", status_code=204)
async def settings(body: WorkerSettings, session: SessionDep, user: CurrentUser) -> None:
    worker = await db_workers.get(session, body.worker_id)
    if worker is None or (not user.is_admin and worker.user_id != user.user_id):
        raise NotFound(f"worker {body.worker_id!r} not found")
    worker.tasks_to_give = body.tasks_to_give
    await session.commit()
