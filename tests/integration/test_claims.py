"""The claim query on real SQLite and PostgreSQL: concurrent claimers never share a task."""

from __future__ import annotations

import asyncio
import collections
from datetime import timedelta

from visionatrix.config import _async_url
from visionatrix.db import tasks as db_tasks
from visionatrix.db.engine import create_engine, session_factory, upgrade_to_head
from visionatrix.db.tables import utcnow
from visionatrix.errors import NotFound
from visionatrix.tasks import transitions


async def _claim_all(url: str, tasks: int, claimers: int) -> list[tuple[str, int]]:
    engine = create_engine(_async_url(url))
    await upgrade_to_head(engine)
    sessions = session_factory(engine)
    async with sessions() as session:
        for i in range(tasks):
            await db_tasks.add(session, name="flow", user_id="u", priority=i % 3)
        await session.commit()

    async def claimer(name: str) -> list[tuple[str, int]]:
        got = []
        while True:
            async with sessions() as session:
                task = await transitions.claimed(
                    session,
                    worker_id=name,
                    flow_names=["flow"],
                    user_id=None,
                    prefer="",
                    now=utcnow(),
                    lease_seconds=60,
                )
                await session.commit()
            if task is None:
                return got
            got.append((name, task.id))

    try:
        results = await asyncio.gather(*(claimer(f"w{i}") for i in range(claimers)))
    finally:
        await engine.dispose()
    return [item for chunk in results for item in chunk]


def test_concurrent_claims_never_share_a_task(db_url: str) -> None:
    claims = asyncio.run(_claim_all(db_url, tasks=60, claimers=6))
    ids = collections.Counter(task_id for _w, task_id in claims)
    assert len(ids) == 60 and set(ids.values()) == {1}


def test_claims_follow_priority_then_age(db_url: str) -> None:
    claims = asyncio.run(_claim_all(db_url, tasks=9, claimers=1))
    order = [task_id for _w, task_id in claims]
    # priorities were i % 3: ids 3, 6, 9 have 2; 2, 5, 8 have 1; then 1, 4, 7
    assert order == [3, 6, 9, 2, 5, 8, 1, 4, 7]


async def _stale_worker(url: str) -> tuple[str, Exception | None, str | None]:
    engine = create_engine(_async_url(url))
    await upgrade_to_head(engine)
    sessions = session_factory(engine)

    async def step(change):  # type: ignore[no-untyped-def]
        async with sessions() as session:
            result = await change(session)
            await session.commit()
            return result

    def claim(worker: str):  # type: ignore[no-untyped-def]
        return lambda s: transitions.claimed(
            s, worker_id=worker, flow_names=["f"], user_id=None, prefer="", now=utcnow(), lease_seconds=1
        )

    try:
        await step(lambda s: db_tasks.add(s, name="f", user_id="u", outputs=[{"comfy_node_id": 9}]))
        first = await step(claim("w1"))
        later = utcnow() + timedelta(seconds=5)
        await step(lambda s: transitions.expired(s, first, now=later, max_attempts=3))
        await step(claim("w2"))
        refused: Exception | None = None
        try:
            await step(lambda s: transitions.completed(s, first, outputs=[], now=utcnow()))
        except NotFound as exc:
            refused = exc
        row = await step(lambda s: db_tasks.get(s, first.id))
        return row.status, refused, row.worker_id
    finally:
        await engine.dispose()


def test_a_worker_whose_lease_ran_out_cannot_finish_the_task_another_claimed(db_url: str) -> None:
    status, refused, holder = asyncio.run(_stale_worker(db_url))
    assert isinstance(refused, NotFound) and "not locked by this worker" in str(refused)
    assert (status, holder) == ("running", "w2")
