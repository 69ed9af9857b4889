"""The task change log and its streams on real databases: heartbeats, pruned history, late commits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from visionatrix.config import _async_url
from visionatrix.db import tasks as db_tasks
from visionatrix.db.engine import create_engine, session_factory, upgrade_to_head
from visionatrix.tasks.events import (
    Heartbeat,
    Reset,
    StreamFilter,
    StreamItem,
    TaskChanged,
    TaskDeleted,
    TaskEvents,
)

Scenario = Callable[[async_sessionmaker[AsyncSession]], Awaitable[None]]


def _run(db_url: str, scenario: Scenario) -> None:
    async def main() -> None:
        engine = create_engine(_async_url(db_url))
        try:
            await upgrade_to_head(engine)
            await scenario(session_factory(engine))
        finally:
            await engine.dispose()

    asyncio.run(main())


async def _add(sessions: async_sessionmaker[AsyncSession], events: TaskEvents, user: str = "ann") -> int:
    async with sessions() as session:
        task = await db_tasks.add(session, name="flow", user_id=user)
        events.record(session, task, "created")
        await session.commit()
        return task.id


async def _next(stream: AsyncIterator[StreamItem], timeout: float = 10) -> StreamItem:
    return await asyncio.wait_for(anext(stream), timeout)


def test_a_quiet_stream_sends_heartbeats_with_the_resume_id(db_url: str) -> None:
    async def scenario(sessions: async_sessionmaker[AsyncSession]) -> None:
        events = TaskEvents(sessions, recheck=0.05, heartbeat=0.2)
        await _add(sessions, events)
        stream = events.stream(StreamFilter("bob"))
        beat = await _next(stream)
        assert isinstance(beat, Heartbeat) and beat.cursor >= 1
        await stream.aclose()

    _run(db_url, scenario)


def test_a_resume_after_pruned_history_says_reset_then_sends_the_state(db_url: str) -> None:
    async def scenario(sessions: async_sessionmaker[AsyncSession]) -> None:
        events = TaskEvents(sessions, recheck=0.05, retention=timedelta(0))
        first = await _add(sessions, events)
        second = await _add(sessions, events)
        assert await events.prune() == 2
        stream = events.stream(StreamFilter("ann"), after=1)
        items = [await _next(stream) for _ in range(3)]
        assert isinstance(items[0], Reset)
        assert [i.task["task_id"] for i in items[1:] if isinstance(i, TaskChanged)] == [first, second]
        await stream.aclose()

    _run(db_url, scenario)


def test_a_deleted_task_is_announced_to_its_owner_only(db_url: str) -> None:
    async def scenario(sessions: async_sessionmaker[AsyncSession]) -> None:
        events = TaskEvents(sessions, recheck=5.0)  # only this process's commits wake the streams
        task_id = await _add(sessions, events)
        owner = events.stream(StreamFilter("ann"))
        other = events.stream(StreamFilter("bob"))
        assert isinstance(await _next(owner), TaskChanged)  # the unfinished task, at start
        pending = asyncio.ensure_future(_next(other, timeout=1.0))
        async with sessions() as session:
            await events.record_deleted(session, [task_id])
            await db_tasks.delete_ids(session, [task_id])
            await session.commit()
        gone = await _next(owner, timeout=2.0)  # well before the 5 s re-check: the commit woke it
        assert gone == TaskDeleted(gone.cursor, task_id, "flow")
        with pytest.raises(TimeoutError):
            await pending
        await owner.aclose()
        await other.aclose()

    _run(db_url, scenario)


def test_an_event_committed_after_a_later_one_still_arrives(db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer at a time: its event ids always commit in order")

    async def scenario(sessions: async_sessionmaker[AsyncSession]) -> None:
        events = TaskEvents(sessions, recheck=0.05)
        stream = events.stream(StreamFilter("ann"))
        for _ in range(2):  # a late commit before the stream starts, then one while it runs
            async with sessions() as slow:
                early = await db_tasks.add(slow, name="flow", user_id="ann")
                events.record(slow, early, "created")
                await slow.flush()  # its event id is taken now, but not yet visible
                late = await _add(sessions, events)
                seen = await _next(stream)
                assert isinstance(seen, TaskChanged) and seen.task["task_id"] == late
                await asyncio.sleep(0.3)  # the stream has read past the early id
                await slow.commit()
            seen = await _next(stream)
            assert isinstance(seen, TaskChanged) and seen.task["task_id"] == early.id
        await stream.aclose()

    _run(db_url, scenario)
