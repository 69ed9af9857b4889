"""Queries on the task change log (``task_events``): append, read a user's changes by id, prune."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from visionatrix.db.tables import Task, TaskEvent, utcnow


def add(session: AsyncSession, task: Task, kind: str) -> None:
    session.add(TaskEvent(task_id=task.id, user_id=task.user_id, name=task.name, kind=kind))


async def add_deleted(session: AsyncSession, ids: Sequence[int]) -> set[str]:
    """Log the deletion of ``ids`` (before the rows go); returns the owners, to wake their streams."""
    if not ids:
        return set()
    rows = (await session.execute(select(Task.id, Task.user_id, Task.name).where(Task.id.in_(ids)))).all()
    for task_id, user_id, name in rows:
        session.add(TaskEvent(task_id=task_id, user_id=user_id, name=name, kind="deleted"))
    return {user_id for _id, user_id, _name in rows}


def _of_user(user_id: str, task_id: int | None, name: str | None):  # type: ignore[no-untyped-def]
    query = select(TaskEvent.id, TaskEvent.task_id, TaskEvent.name).where(TaskEvent.user_id == user_id)
    if task_id is not None:
        query = query.where(TaskEvent.task_id == task_id)
    if name:
        query = query.where(TaskEvent.name == name)
    return query


async def after(
    session: AsyncSession,
    user_id: str,
    after_id: int,
    *,
    upto: int | None = None,
    task_id: int | None = None,
    name: str | None = None,
    limit: int = 1000,
) -> list[tuple[int, int, str]]:
    """``(event id, task id, flow name)`` of the user's events after ``after_id`` (up to ``upto``)."""
    query = _of_user(user_id, task_id, name).where(TaskEvent.id > after_id)
    if upto is not None:
        query = query.where(TaskEvent.id <= upto)
    rows = await session.execute(query.order_by(TaskEvent.id).limit(limit))
    return [(int(i), int(t), str(n)) for i, t, n in rows]


async def last_id(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.max(TaskEvent.id))) or 0)


async def first_id(session: AsyncSession) -> int | None:
    value = await session.scalar(select(func.min(TaskEvent.id)))
    return None if value is None else int(value)


async def floor(session: AsyncSession, ref_id: int, seconds: float) -> int:
    """An id below every event logged less than ``seconds`` before event ``ref_id`` (or before now):
    the last one logged earlier than that, or 0."""
    ref_at = await session.scalar(
        select(TaskEvent.at).where(TaskEvent.id <= ref_id).order_by(TaskEvent.id.desc()).limit(1)
    )
    since = (ref_at or utcnow()) - timedelta(seconds=seconds)
    older = await session.scalar(
        select(TaskEvent.id)
        .where(TaskEvent.at < since)
        .order_by(TaskEvent.at.desc(), TaskEvent.id.desc())
        .limit(1)
    )
    return min(ref_id, int(older or 0))


async def prune(session: AsyncSession, before: datetime) -> int:
    result = await session.execute(
        delete(TaskEvent).where(TaskEvent.at < before).execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
