"""Queries on workers: who pulls tasks, when they were last seen, which flows they take."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from visionatrix.db.tables import Worker, utcnow

_SEEN_EVERY = timedelta(seconds=10)


async def seen(
    session: AsyncSession,
    worker_id: str,
    user_id: str,
    details: dict[str, Any],
    unavailable_flows: dict[str, str] | None = None,
) -> Worker:
    """The worker's row, created on its first check-in, marked alive; ``unavailable_flows`` as
    reported (None: the worker does not report them, the row keeps what it had)."""
    worker = await session.get(Worker, worker_id)
    if worker is None:
        worker = Worker(worker_id=worker_id, user_id=user_id, tasks_to_give=[], details=details)
        session.add(worker)
    if worker.user_id != user_id:
        return worker  # another user's: the caller refuses, nothing is written
    now = utcnow()
    # a long-polling worker checks in twice a second: write only what changed, or once in a while
    if worker.details != details:
        worker.details = details
    if unavailable_flows is not None and worker.unavailable_flows != unavailable_flows:
        worker.unavailable_flows = unavailable_flows
    if worker.last_seen is None or now - worker.last_seen > _SEEN_EVERY:
        worker.last_seen = now
    return worker


async def set_current(session: AsyncSession, worker_id: str, task_id: int | None) -> None:
    worker = await session.get(Worker, worker_id)
    if worker is not None and worker.current_task_id != task_id:
        worker.current_task_id = task_id


async def set_tasks_to_give(session: AsyncSession, worker: Worker, names: list[str]) -> None:
    worker.tasks_to_give = names
    await session.flush()


async def all_workers(session: AsyncSession, user_id: str | None) -> list[Worker]:
    query = select(Worker).order_by(Worker.worker_id)
    if user_id is not None:
        query = query.where(Worker.user_id == user_id)
    return list(await session.scalars(query))


async def seen_since(session: AsyncSession, since: datetime) -> list[Worker]:
    return list(await session.scalars(select(Worker).where(Worker.last_seen >= since)))


async def get(session: AsyncSession, worker_id: str) -> Worker | None:
    return await session.get(Worker, worker_id)
