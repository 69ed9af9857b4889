"""Queries on tasks: the only home of task SQL, including the atomic claim."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from visionatrix.db.tables import Task

UNFINISHED = ("queued", "running")
FINISHED = ("completed", "failed")


async def add(session: AsyncSession, **values: Any) -> Task:
    task = Task(**values)
    session.add(task)
    await session.flush()
    return task


async def get(session: AsyncSession, task_id: int) -> Task | None:
    return await session.get(Task, task_id)


async def get_many(session: AsyncSession, ids: Sequence[int]) -> list[Task]:
    if not ids:
        return []
    rows = await session.scalars(select(Task).where(Task.id.in_(ids)).order_by(Task.id))
    return list(rows)


async def children_ids(session: AsyncSession, parent_ids: Sequence[int]) -> dict[int, list[int]]:
    result: dict[int, list[int]] = {pid: [] for pid in parent_ids}
    if not parent_ids:
        return result
    rows = await session.execute(
        select(Task.parent_task_id, Task.id).where(Task.parent_task_id.in_(parent_ids)).order_by(Task.id)
    )
    for parent, child in rows:
        result[parent].append(child)
    return result


async def list_for_user(
    session: AsyncSession,
    user_id: str,
    *,
    name: str | None = None,
    group_scope: int | None = None,
    only_parent: bool = False,
    statuses: Sequence[str] | None = None,
) -> list[Task]:
    query = select(Task).where(Task.user_id == user_id)
    if name:
        query = query.where(Task.name == name)
    if group_scope is not None:
        query = query.where(Task.group_scope == group_scope)
    if only_parent:
        query = query.where(Task.parent_task_id.is_(None))
    if statuses is not None:
        query = query.where(Task.status.in_(statuses))
    return list(await session.scalars(query.order_by(Task.id)))


async def delete_ids(session: AsyncSession, ids: Sequence[int]) -> None:
    if ids:
        await session.execute(delete(Task).where(Task.id.in_(ids)))


async def claim_next(
    session: AsyncSession,
    *,
    flow_names: Sequence[str],
    user_id: str | None,
    prefer: str,
    worker_id: str,
    now: datetime,
    leased_until: datetime,
) -> Task | None:
    """Atomically lock the next queued task for ``worker_id``; None when there is none.

    One UPDATE ... WHERE id = (subquery) RETURNING statement: on PostgreSQL the subquery
    skips rows other transactions hold (FOR UPDATE SKIP LOCKED), on SQLite the statement runs
    under the database's single writer lock. Either way two workers never get the same row.
    """
    if not flow_names:
        return None
    candidates = select(Task.id).where(Task.status == "queued", Task.name.in_(flow_names))
    if user_id is not None:
        candidates = candidates.where(Task.user_id == user_id)
    # the flow whose models the worker has loaded first, then priority, then age
    order = [Task.priority.desc()]
    if prefer:
        order.insert(0, (Task.name == prefer).desc())
    candidates = candidates.order_by(*order, Task.id).limit(1)
    if session.bind.dialect.name == "postgresql":  # type: ignore[union-attr]
        candidates = candidates.with_for_update(skip_locked=True)
    claimed = await session.scalars(
        update(Task)
        .where(Task.id == candidates.scalar_subquery(), Task.status == "queued")
        .values(
            status="running",
            progress=0.1,
            worker_id=worker_id,
            locked_at=now,
            leased_until=leased_until,
            attempts=Task.attempts + 1,
            updated_at=now,
        )
        .returning(Task)
        .execution_options(synchronize_session=False)
    )
    return claimed.first()


async def expired(session: AsyncSession, now: datetime) -> list[Task]:
    rows = await session.scalars(
        select(Task).where(Task.status == "running", Task.leased_until <= now).order_by(Task.id)
    )
    return list(rows)


async def requeue_if_still_expired(session: AsyncSession, task_id: int, now: datetime) -> bool:
    result = await session.execute(
        update(Task)
        .where(Task.id == task_id, Task.status == "running", Task.leased_until <= now)
        .values(
            status="queued", progress=0.0, worker_id=None, locked_at=None, leased_until=None, updated_at=now
        )
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def fail_if_still_expired(session: AsyncSession, task_id: int, now: datetime, error: str) -> bool:
    result = await session.execute(
        update(Task)
        .where(Task.id == task_id, Task.status == "running", Task.leased_until <= now)
        .values(status="failed", error=error, leased_until=None, updated_at=now, finished_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def count_queued(session: AsyncSession, flow_names: Sequence[str] | None = None) -> int:
    query = select(func.count()).select_from(Task).where(Task.status == "queued")
    if flow_names is not None:
        query = query.where(Task.name.in_(flow_names))
    return int(await session.scalar(query) or 0)


async def ids_by_filter(
    session: AsyncSession, user_id: str, name: str | None, group_scope: int | None, statuses: Sequence[str]
) -> list[int]:
    query = select(Task.id).where(Task.user_id == user_id, Task.status.in_(statuses))
    if name:
        query = query.where(Task.name == name)
    if group_scope is not None:
        query = query.where(Task.group_scope == group_scope)
    return list(await session.scalars(query))
