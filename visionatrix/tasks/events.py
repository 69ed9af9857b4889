"""Live task changes for streams (Server-Sent Events): recorded with each change, read back by id.

Each change point calls :meth:`TaskEvents.record` (or :meth:`TaskEvents.record_deleted`) inside
its own transaction, so the log row commits with the change and every server process sharing
the database sees it. Streams in the same process wake the moment that transaction commits;
streams in other processes notice within ``recheck`` seconds. A stream never holds a database
session while it waits, and it sends the task as it is when read, so a late or repeated event
can never show an older state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from visionatrix.db import task_events as db_events
from visionatrix.db import tasks as db_tasks
from visionatrix.db.tables import Task, utcnow
from visionatrix.tasks import wire, workers

log = logging.getLogger(__name__)

_PENDING = "vix_task_event_users"  # Session.info key: owners of the changes this transaction logs
# On PostgreSQL a transaction may commit a lower event id after another committed a higher one;
# ids this recent are read again (transactions here last milliseconds).
LOOKBACK_SECONDS = 5.0
_BATCH = 1000  # new events read at a time


@dataclass(frozen=True)
class TaskChanged:
    """The task as the progress route answers it."""

    cursor: int
    task: dict[str, Any]


@dataclass(frozen=True)
class TaskDeleted:
    cursor: int
    task_id: int
    name: str


@dataclass(frozen=True)
class Heartbeat:
    cursor: int


@dataclass(frozen=True)
class Reset:
    """Changes after the client's id are no longer kept: it should reload what it shows."""

    cursor: int


StreamItem = TaskChanged | TaskDeleted | Heartbeat | Reset


@dataclass(frozen=True)
class StreamFilter:
    """Which of a user's tasks a stream follows: one task, one flow's, or all."""

    user_id: str
    task_id: int | None = None
    name: str | None = None


class TaskEvents:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        recheck: float = 1.0,
        heartbeat: float = 15.0,
        retention: timedelta = timedelta(hours=1),
    ) -> None:
        self.sessions = sessions
        self.recheck = recheck
        self.heartbeat = heartbeat
        self.retention = retention
        # per user: one event per open stream, set when a change of that user's tasks commits here
        self._waiters: dict[str, set[asyncio.Event]] = {}

    # ---- write side: one call at each change point, inside its transaction ---------------------
    def record(self, session: AsyncSession, task: Task, kind: str) -> None:
        db_events.add(session, task, kind)
        self._wake_after_commit(session, [task.user_id])

    async def record_deleted(self, session: AsyncSession, ids: Sequence[int]) -> None:
        """Call before the rows are deleted, in the same transaction."""
        self._wake_after_commit(session, await db_events.add_deleted(session, ids))

    def _wake_after_commit(self, session: AsyncSession, users: Iterable[str]) -> None:
        pending = session.info.get(_PENDING)
        if pending is None:
            pending = session.info[_PENDING] = set()
            event.listen(session.sync_session, "after_commit", self._after_commit, once=True)
        pending.update(users)

    def _after_commit(self, sync_session: Session) -> None:
        for user_id in sync_session.info.pop(_PENDING, set()):
            for waiter in self._waiters.get(user_id, ()):
                waiter.set()

    # ---- read side -----------------------------------------------------------------------------
    async def stream(
        self, where: StreamFilter, after: int | None = None, stopping: Callable[[], bool] = lambda: False
    ) -> AsyncIterator[StreamItem]:
        """The changes of ``where``'s tasks, forever (until ``stopping()``).

        ``after`` resumes after an event id a previous stream sent; without it (or when the
        events since were pruned) the stream starts with the current state of the matching
        unfinished tasks (with ``task_id``: that task, whatever its state).
        """
        wake = asyncio.Event()
        self._waiters.setdefault(where.user_id, set()).add(wake)
        try:
            async with self.sessions() as session:
                window, items = await self._start(session, where, after)
            for item in items:
                yield item
            quiet_since = time.monotonic()
            while not stopping():
                if not window.behind:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wake.wait(), self.recheck)
                wake.clear()  # before reading: a commit during the read wakes the next wait at once
                async with self.sessions() as session:
                    items = await self._poll(session, where, window)
                for item in items:
                    yield item
                if items:
                    quiet_since = time.monotonic()
                elif time.monotonic() - quiet_since >= self.heartbeat:
                    quiet_since = time.monotonic()
                    yield Heartbeat(window.high)
        finally:
            self._waiters[where.user_id].discard(wake)

    async def _start(
        self, session: AsyncSession, where: StreamFilter, after: int | None
    ) -> tuple[_Window, list[StreamItem]]:
        items: list[StreamItem] = []
        if after is not None:
            first = await db_events.first_id(session)
            if first is not None and first <= after + 1:
                # what the client saw ended at ``after``; events just below it may have committed later
                low = min(after, await db_events.floor(session, after, LOOKBACK_SECONDS))
                return _Window(low=low, high=after), items
            items.append(Reset(after))
        high = await db_events.last_id(session)
        low = await db_events.floor(session, high, LOOKBACK_SECONDS)
        seen = await db_events.after(session, where.user_id, low, upto=high, limit=10 * _BATCH)
        window = _Window(low=low, high=high, sent={event_id for event_id, _t, _n in seen})
        if where.task_id is not None:
            tasks = [t for t in [await db_tasks.get(session, where.task_id)] if t is not None]
        else:
            tasks, _total = await db_tasks.list_for_user(
                session, where.user_id, name=where.name, statuses=db_tasks.UNFINISHED
            )
        owned = [t for t in tasks if t.user_id == where.user_id]
        items += await _described(session, owned, high)
        return window, items

    async def _poll(self, session: AsyncSession, where: StreamFilter, window: _Window) -> list[StreamItem]:
        filters = {"task_id": where.task_id, "name": where.name}
        late = await db_events.after(
            session, where.user_id, window.low, upto=window.high, limit=10 * _BATCH, **filters
        )
        new = await db_events.after(session, where.user_id, window.high, limit=_BATCH, **filters)
        window.behind = len(new) == _BATCH
        fresh = [row for row in late + new if row[0] not in window.sent]
        if not fresh:
            window.advance([])
            return []
        latest: dict[int, tuple[int, str]] = {}
        for event_id, task_id, name in sorted(fresh):
            latest.pop(task_id, None)  # re-insert: the order is that of each task's last change
            latest[task_id] = (event_id, name)
        window.advance([event_id for event_id, _t, _n in fresh])
        rows = {t.id: t for t in await db_tasks.get_many(session, list(latest))}
        present = [rows[i] for i in latest if i in rows and rows[i].user_id == where.user_id]
        described = {item.task["task_id"]: item for item in await _described(session, present, window.high)}
        return [
            described.get(task_id) or TaskDeleted(window.high, task_id, name)
            for task_id, (_event_id, name) in latest.items()
        ]

    # ---- upkeep --------------------------------------------------------------------------------
    async def prune(self) -> int:
        async with self.sessions() as session:
            removed = await db_events.prune(session, utcnow() - self.retention)
            await session.commit()
        return removed

    async def prune_forever(self, every: float = 60.0) -> None:
        while True:
            try:
                await self.prune()
            except Exception:  # upkeep must outlive a database hiccup
                log.exception("pruning task events failed")
            await asyncio.sleep(every)


async def _described(session: AsyncSession, tasks: Sequence[Task], cursor: int) -> list[StreamItem]:
    children = await db_tasks.children_ids(session, [t.id for t in tasks])
    warnings = await workers.waiting_warnings(session, tasks)
    return [TaskChanged(cursor, wire.details(t, children[t.id], warnings.get(t.id, ""))) for t in tasks]


@dataclass
class _Window:
    """What a stream has read: every event up to ``high`` (the id clients resume from). Ids in
    (``low``, ``high``] are read again until they are ``LOOKBACK_SECONDS`` old, and those not
    yet ``sent`` are sent."""

    low: int
    high: int
    sent: set[int] = field(default_factory=set)
    marks: deque[tuple[float, int]] = field(default_factory=deque)
    behind: bool = False  # the last read was a full batch: read again without waiting

    def advance(self, ids: list[int]) -> None:
        now = time.monotonic()
        self.sent.update(ids)
        self.high = max([self.high, *ids])
        self.marks.append((now, self.high))
        while len(self.marks) > 1 and self.marks[1][0] <= now - LOOKBACK_SECONDS:
            self.marks.popleft()
        if self.marks[0][0] <= now - LOOKBACK_SECONDS:
            self.low = max(self.low, self.marks[0][1])
            self.sent = {i for i in self.sent if i > self.low}
