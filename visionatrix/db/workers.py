"""Queries on workers: who pulls tasks, when they were last seen, which flows they take."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from visionatrix.db.tables import Worker, utcnow
from visionatrix.schemas import WorkerDetails

_SEEN_EVERY = timedelta(seconds=10)


async def seen(
    session: AsyncSession, worker_id: str, user_id: str, details: WorkerDetails, offered: Sequence[str]
) -> list[str]:
    """Record that the worker is alive; return the flow names it may take now."""
    worker = await session.get(Worker, worker_id)
    if worker is None:
        worker = Worker(worker_id=worker_id, user_id=user_id, tasks_to_give=[])
        session.add(worker)
    now, dumped = utcnow(), details.model_dump()
    # a long-polling worker checks in twice a second: write only what changed, or once in a while
    if worker.details != dumped:
        worker.details = dumped
    if worker.last_seen is None or now - worker.last_seen > _SEEN_EVERY:
        worker.last_seen = now
    if worker.tasks_to_give:
        return [name for name in offered if name in worker.tasks_to_give]
    return list(offered)


async def set_current(session: AsyncSession, worker_id: str, task_id: int | None) -> None:
    worker = await session.get(Worker, worker_id)
    if worker is not None:
        worker.current_task_id = task_id


async def all_workers(session: AsyncSession, user_id: str | None) -> list[Worker]:
    query = select(Worker).order_by(Worker.worker_id)
    if user_id is not None:
        query = query.where(Worker.user_id == user_id)
    return list(await session.scalars(query))


async def get(session: AsyncSession, worker_id: str) -> Worker | None:
    return await session.get(Worker, worker_id)
