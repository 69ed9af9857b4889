"""The claim query on real SQLite and PostgreSQL: concurrent claimers never share a task."""

from __future__ import annotations

import asyncio
import collections

from visionatrix.config import _async_url
from visionatrix.db import tasks as db_tasks
from visionatrix.db.engine import create_engine, session_factory, upgrade_to_head
from visionatrix.db.tables import utcnow
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
