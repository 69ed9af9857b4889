"""Queries on tasks: the only home of task SQL, including the atomic claim.

Status changes are written by ``tasks/transitions.py`` through ``claim_next`` and ``write``:
each is one conditional UPDATE, so a change that lost a race to another one touches nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from visionatrix.db.tables import Task
from visionatrix.tasks.lifecycle import Status

UNFINISHED = (Status.QUEUED, Status.RUNNING)
FINISHED = (Status.COMPLETED, Status.FAILED)
# the largest id a task can have (BIGINT); larger numbers name no task
MAX_ID = 2**63 - 1


async def add(session: AsyncSession, **values: Any) -> Task:
    task = Task(**values)
    session.add(task)
    await session.flush()
    return task


async def get(session: AsyncSession, task_id: int) -> Task | None:
    if not 0 < task_id <= MAX_ID:
        return None
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


def _owned_by(
    user_id: str, name: str | None, group_scope: int | None, statuses: Collection[str] | None
) -> list[ColumnElement[bool]]:
    where = [Task.user_id == user_id]
    if name:
        where.append(Task.name == name)
    if group_scope is not None:
        where.append(Task.group_scope == group_scope)
    if statuses is not None:
        where.append(Task.status.in_(statuses))
    return where


async def list_for_user(
    session: AsyncSession,
    user_id: str,
    *,
    name: str | None = None,
    group_scope: int | None = None,
    only_parent: bool = False,
    statuses: Collection[str] | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> tuple[list[Task], int]:
    """The user's tasks oldest first, and how many match in all.

    With ``limit`` and no ``offset`` the newest ``limit`` tasks are returned (still oldest first):
    a capped listing shows what a user is working on now.
    """
    where = _owned_by(user_id, name, group_scope, statuses)
    if only_parent:
        where.append(Task.parent_task_id.is_(None))
    total = int(await session.scalar(select(func.count()).select_from(Task).where(*where)) or 0)
    query = select(Task).where(*where)
    if limit is None:
        return list(await session.scalars(query.order_by(Task.id))), total
    start = offset if offset else max(0, total - limit)
    rows = await session.scalars(query.order_by(Task.id).offset(start).limit(limit))
    return list(rows), total


async def delete_ids(session: AsyncSession, ids: Sequence[int]) -> None:
    if ids:
        await session.execute(delete(Task).where(Task.id.in_(ids)))


async def claim_next(
    session: AsyncSession,
    *,
    flow_names: Sequence[str],
    user_id: str | None,
    prefer: str,
    values: Mapping[str, Any],
) -> Task | None:
    """Atomically write ``values`` into the next queued task and count one more attempt on it.

    One UPDATE ... WHERE id = (subquery) RETURNING statement: on PostgreSQL the subquery
    skips rows other transactions hold (FOR UPDATE SKIP LOCKED), on SQLite the statement runs
    under the database's single writer lock. Either way two workers never get the same row.
    """
    if not flow_names:
        return None
    candidates = select(Task.id).where(Task.status == Status.QUEUED, Task.name.in_(flow_names))
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
        .where(Task.id == candidates.scalar_subquery(), Task.status == Status.QUEUED)
        .values(**values, attempts=Task.attempts + 1)
        .returning(Task)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    return claimed.first()


_ANY: Any = object()


async def write(
    session: AsyncSession,
    task_id: int,
    values: Mapping[str, Any],
    *,
    status: Status,
    worker_id: str | None = _ANY,
    lease_expired_by: datetime | None = None,
) -> Task | None:
    """Write ``values`` into the task if it still is in ``status`` (and, when given, held by
    ``worker_id`` / with its lease run out by ``lease_expired_by``). The updated row, or None
    when another change came first."""
    where = [Task.id == task_id, Task.status == status]
    if worker_id is not _ANY:
        where.append(Task.worker_id.is_(None) if worker_id is None else Task.worker_id == worker_id)
    if lease_expired_by is not None:
        where.append(Task.leased_until <= lease_expired_by)
    changed = await session.scalars(
        update(Task)
        .where(*where)
        .values(**values)
        .returning(Task)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    return changed.first()


async def expired(session: AsyncSession, now: datetime) -> list[Task]:
    rows = await session.scalars(
        select(Task).where(Task.status == Status.RUNNING, Task.leased_until <= now).order_by(Task.id)
    )
    return list(rows)


async def count_queued(session: AsyncSession, flow_names: Sequence[str] | None = None) -> int:
    query = select(func.count()).select_from(Task).where(Task.status == Status.QUEUED)
    if flow_names is not None:
        query = query.where(Task.name.in_(flow_names))
    return int(await session.scalar(query) or 0)


async def ids_by_filter(
    session: AsyncSession, user_id: str, name: str | None, group_scope: int | None, statuses: Collection[str]
) -> list[int]:
    return list(
        await session.scalars(select(Task.id).where(*_owned_by(user_id, name, group_scope, statuses)))
    )
