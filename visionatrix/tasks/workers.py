"""Workers: who pulls tasks. A worker's id is bound to the user it authenticates as; this module
owns that identity, the check-ins, the listing and ``tasks_to_give`` (which flows it takes).

A worker names itself in ``worker_details.worker_id`` (Visionatrix workers send none: then its
host and device name it). The server always puts the authenticated user in front — ``alice``'s
``gpu-1`` is ``alice:gpu-1`` — so no user can speak for, overwrite or starve another's worker.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from visionatrix.db import workers as db_workers
from visionatrix.db.tables import Task, Worker, utcnow
from visionatrix.errors import Forbidden, NotFound
from visionatrix.schemas import NextTaskRequest, UserInfo, WorkerDetails
from visionatrix.tasks.lifecycle import Status

# a worker not seen for this long shows as offline
ONLINE_WITHIN = timedelta(minutes=2)
_MAX_ID = 256


def identity(user: UserInfo, details: WorkerDetails) -> str:
    """The worker's id: its own name (or host and device), always under its user's name."""
    named = str((details.model_extra or {}).get("worker_id") or "")
    if not named:
        device = details.devices[0].get("name", "cpu") if details.devices else "cpu"
        named = f"{details.system.get('hostname', 'unknown')}:[{device}]"
    prefix = f"{user.user_id}:"
    return (named if named.startswith(prefix) else prefix + named)[:_MAX_ID]


async def check_in(session: AsyncSession, user: UserInfo, request: NextTaskRequest) -> tuple[str, list[str]]:
    """Record that the worker is alive (and what it cannot run); its id and the flow names it may take now."""
    details, offered = request.worker_details, request.tasks_names
    worker_id = identity(user, details)
    worker = await db_workers.seen(
        session, worker_id, user.user_id, details.model_dump(), request.unavailable_flows
    )
    if worker.user_id != user.user_id:  # only rows written before ids carried their user
        raise Forbidden(f"worker {worker_id!r} belongs to another user")
    if worker.tasks_to_give:
        return worker_id, [name for name in offered if name in worker.tasks_to_give]
    return worker_id, list(offered)


async def waiting_warnings(session: AsyncSession, tasks: Sequence[Task]) -> dict[int, str]:
    """Why each queued task among ``tasks`` cannot start: no worker online, or none of the online
    ones can run its flow (with their reasons). A task some worker could take gets none."""
    queued = [t for t in tasks if t.status == Status.QUEUED]
    if not queued:
        return {}
    online = await db_workers.seen_since(session, utcnow() - ONLINE_WITHIN)
    warnings = {t.id: why_waiting(t.name, online) for t in queued}
    return {task_id: text for task_id, text in warnings.items() if text}


def why_waiting(flow: str, online: Sequence[Worker]) -> str:
    if not online:
        return "no worker is online"
    reasons = []
    for worker in online:
        if worker.tasks_to_give and flow not in worker.tasks_to_give:
            # not named: the task's owner may be anyone, a worker's id carries its host's name
            reasons.append("a worker is set to take only other flows")
        elif reason := (worker.unavailable_flows or {}).get(flow):
            reasons.append(str(reason))
        else:
            return ""  # this one can take it: the task waits its turn
    return f"no worker can run flow {flow!r}: {'; '.join(dict.fromkeys(reasons))}"


async def busy_with(session: AsyncSession, worker_id: str, task_id: int | None) -> None:
    await db_workers.set_current(session, worker_id, task_id)


async def listing(session: AsyncSession, user: UserInfo) -> list[dict[str, Any]]:
    """Every worker (admin) or the user's own, as ``/vapi/workers/info`` shows them."""
    now = utcnow()
    return [_shown(w, now - w.last_seen < ONLINE_WITHIN) for w in await _visible(session, user)]


async def _visible(session: AsyncSession, user: UserInfo) -> list[Worker]:
    return await db_workers.all_workers(session, None if user.is_admin else user.user_id)


def _shown(w: Worker, online: bool) -> dict[str, Any]:
    return {
        "worker_id": w.worker_id,
        "user_id": w.user_id,
        "last_seen": w.last_seen.isoformat(),
        "online": online,
        "state": "busy" if w.current_task_id else "idle",
        "current_task_id": w.current_task_id,
        "tasks_to_give": w.tasks_to_give,
        **{k: w.details.get(k) for k in ("worker_version", "pytorch_version", "system", "devices")},
        "device_name": (w.details.get("devices") or [{}])[0].get("name", ""),
        "ram_total": w.details.get("ram_total"),
        "ram_free": w.details.get("ram_free"),
    }


async def set_tasks_to_give(session: AsyncSession, user: UserInfo, worker_id: str, names: list[str]) -> None:
    """Which flows the worker takes (empty: any). Admins set any worker's; users only their own.
    A worker may be named as its user knows it (``gpu-1``) or by its full id (``alice:gpu-1``)."""
    worker = await db_workers.get(session, worker_id)
    if worker is None or worker.user_id != user.user_id:
        own = await db_workers.get(session, f"{user.user_id}:{worker_id}")
        worker = own if own is not None else (worker if user.is_admin else None)
    if worker is None:
        raise NotFound(f"worker {worker_id!r} not found")
    await db_workers.set_tasks_to_give(session, worker, names)
    await session.commit()
