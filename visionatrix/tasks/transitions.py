"""Every change of a task's status: one named function each, writing every field the change touches.

    claimed    queued   → running    a worker's claim: lease, worker, one more attempt
    extended   running  → running    a progress report: progress, execution time, a fresh lease
    completed  running  → completed  results stored: outputs, progress 100
    failed     running  → failed     the worker's error, or a lease that ran out of attempts
    released   running  → queued     the worker gives its claim back; the attempt does not count
    requeued   running  → queued     the lease ran out with attempts left
    reset      failed (any, forced) → queued   a user's restart: a clean slate
    canceled   any      → gone       Visionatrix: cancel is delete

``lifecycle.transition`` decides whether a change is allowed; the write is one conditional UPDATE
(``db.tasks.write``) on the status (and the worker holding the lease), so of two racing changes
exactly one lands and the other reports that the task moved on.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from visionatrix.db import tasks as db_tasks
from visionatrix.db.tables import Task
from visionatrix.errors import InvalidTransition, NotFound
from visionatrix.tasks.lifecycle import Status, expired_error, lease_expiry, running_progress, transition

# a worker's error text is kept, but not without bound: it is echoed on every poll
MAX_ERROR_CHARS = 4000


def _gone(task_id: int) -> NotFound:
    return NotFound(f"task {task_id} is not locked by this worker (cancelled, finished or reassigned)")


async def claimed(
    session: AsyncSession,
    *,
    worker_id: str,
    flow_names: Sequence[str],
    user_id: str | None,
    prefer: str,
    now: datetime,
    lease_seconds: float,
) -> Task | None:
    """The next queued task this worker may take, now running under its lease; None when none waits."""
    values = {
        "status": transition(Status.QUEUED, "claim"),
        "progress": 0.1,
        "error": "",
        "worker_id": worker_id,
        "locked_at": now,
        "leased_until": lease_expiry(now, lease_seconds),
        "updated_at": now,
    }
    return await db_tasks.claim_next(
        session, flow_names=flow_names, user_id=user_id, prefer=prefer, values=values
    )


async def _running(session: AsyncSession, task: Task, action: str, values: dict[str, Any]) -> Task:
    """Write a change of a running task held by its worker; NotFound when the claim moved on."""
    transition(Status(task.status), action)
    written = await db_tasks.write(session, task.id, values, status=Status.RUNNING, worker_id=task.worker_id)
    if written is None:
        raise _gone(task.id)
    return written


async def extended(
    session: AsyncSession,
    task: Task,
    *,
    progress: float,
    execution_time: float,
    now: datetime,
    lease_seconds: float,
) -> Task:
    return await _running(
        session,
        task,
        "extend",
        {
            "progress": running_progress(progress),
            "execution_time": execution_time,
            "leased_until": lease_expiry(now, lease_seconds),
            "updated_at": now,
        },
    )


async def completed(
    session: AsyncSession,
    task: Task,
    *,
    outputs: list[dict[str, Any]],
    now: datetime,
    execution_time: float | None = None,
) -> Task:
    """``execution_time``: the run's time when the worker sent it with the results (else as last reported)."""
    timing = {} if execution_time is None else {"execution_time": execution_time}
    return await _running(
        session,
        task,
        "complete",
        {
            "status": Status.COMPLETED,
            "progress": 100.0,
            "outputs": outputs,
            "error": "",
            "leased_until": None,
            "finished_at": now,
            "updated_at": now,
            **timing,
        },
    )


def _failure(error: str, now: datetime) -> dict[str, Any]:
    return {
        "status": Status.FAILED,
        "error": error[:MAX_ERROR_CHARS] or "failed",
        "leased_until": None,
        "finished_at": now,
        "updated_at": now,
    }


async def failed(
    session: AsyncSession, task: Task, *, error: str, execution_time: float, now: datetime
) -> Task:
    return await _running(session, task, "fail", {**_failure(error, now), "execution_time": execution_time})


async def released(session: AsyncSession, task: Task, *, now: datetime) -> Task:
    return await _running(
        session,
        task,
        "release",
        {
            "status": Status.QUEUED,
            "progress": 0.0,
            "worker_id": None,
            "locked_at": None,
            "leased_until": None,
            "attempts": max(0, task.attempts - 1),
            "updated_at": now,
        },
    )


async def expired(session: AsyncSession, task: Task, *, now: datetime, max_attempts: int) -> Task | None:
    """A task whose lease ran out: requeued while attempts are left, else failed. None when its
    worker reported in the meantime (or it changed otherwise)."""
    after = transition(Status(task.status), "expire", attempts=task.attempts, max_attempts=max_attempts)
    if after is Status.QUEUED:
        values = {
            "status": Status.QUEUED,
            "progress": 0.0,
            "worker_id": None,
            "locked_at": None,
            "leased_until": None,
            "updated_at": now,
        }
    else:
        values = _failure(expired_error(task.attempts), now)
    return await db_tasks.write(
        session, task.id, values, status=Status.RUNNING, worker_id=task.worker_id, lease_expired_by=now
    )


async def reset(session: AsyncSession, task: Task, *, force: bool, now: datetime) -> Task:
    """A restart: the task queues again as if new (its output files are the caller's to delete)."""
    current = Status(task.status)
    transition(current, "force_restart" if force else "restart")
    values = {
        "status": Status.QUEUED,
        "progress": 0.0,
        "error": "",
        "attempts": 0,
        "worker_id": None,
        "locked_at": None,
        "leased_until": None,
        "finished_at": None,
        "execution_time": 0.0,
        "outputs": [{**o, "file_size": -1, "batch_size": -1} for o in task.outputs],
        "updated_at": now,
    }
    written = await db_tasks.write(session, task.id, values, status=current)
    if written is None:
        raise InvalidTransition(f"task {task.id} changed while restarting it; try again")
    return written


async def canceled(session: AsyncSession, ids: Sequence[int]) -> None:
    """The tasks are gone (Visionatrix: cancel is delete); a worker running one learns it from
    the 404 on its next report."""
    await db_tasks.delete_ids(session, ids)
