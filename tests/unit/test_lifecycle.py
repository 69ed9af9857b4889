"""The task lifecycle: the pure state machine, and a Hypothesis state machine that drives the named
transitions (``tasks/transitions.py``) on a real database and checks every field after each step."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from visionatrix.config import _async_url
from visionatrix.db import tasks as db_tasks
from visionatrix.db.engine import create_engine, session_factory, upgrade_to_head
from visionatrix.db.tables import Task, utcnow
from visionatrix.errors import Conflict, InvalidTransition, NotFound
from visionatrix.tasks import transitions
from visionatrix.tasks.lifecycle import Status, running_progress, transition

T = TypeVar("T")
MAX_ATTEMPTS = 2
LEASE = 60.0
OUTPUTS = [{"comfy_node_id": 9, "type": "image", "file_size": -1, "batch_size": -1}]


def test_terminal_statuses() -> None:
    assert {s for s in Status if s.is_terminal()} == {Status.COMPLETED, Status.FAILED, Status.CANCELED}


@pytest.mark.parametrize(
    ("start", "action"),
    [
        (Status.COMPLETED, "claim"),
        (Status.QUEUED, "complete"),
        (Status.COMPLETED, "restart"),
        (Status.CANCELED, "cancel"),
        (Status.QUEUED, "release"),
    ],
)
def test_forbidden_transitions_are_refused(start: Status, action: str) -> None:
    with pytest.raises(InvalidTransition, match=action.split("_")[-1]):
        transition(start, action)
    assert issubclass(InvalidTransition, Conflict)


def test_running_progress_never_shows_done() -> None:
    assert running_progress(100.0) == 99.9
    assert running_progress(0.0) == 0.1
    assert running_progress(42.0) == 42.0


class TaskMachine(RuleBasedStateMachine):
    """One task under claims by two workers, progress, results, failures, releases, expiries,
    restarts and a cancel, each through its named transition on the real database. A model of
    what every field must be is kept beside it and compared after each step; a worker acting on
    a claim it no longer holds must be refused (NotFound) and change nothing."""

    runner: asyncio.Runner
    sessions: async_sessionmaker[AsyncSession]

    def __init__(self) -> None:
        super().__init__()
        self.flow = f"flow-{uuid.uuid4().hex[:8]}"
        task = self._run(lambda s: db_tasks.add(s, name=self.flow, user_id="u", outputs=OUTPUTS))
        self.task_id = task.id
        self.gone = False
        self.model: dict[str, Any] = {
            "status": Status.QUEUED, "attempts": 0, "worker_id": None, "progress": 0.0, "error": "",
        }  # fmt: skip
        # the row each worker read when it claimed: what it acts on later, however stale
        self.claims: dict[str, Task] = {}

    def _run(self, step: Callable[[AsyncSession], Awaitable[T]]) -> T:
        async def go() -> T:
            async with self.sessions() as session:
                result = await step(session)
                await session.commit()
                return result

        return self.runner.run(go())

    def _row(self) -> Task | None:
        return self._run(lambda s: db_tasks.get(s, self.task_id))

    def _holds(self, worker: str) -> bool:
        return self.model["status"] is Status.RUNNING and self.model["worker_id"] == worker

    @rule(worker=st.sampled_from(["w1", "w2"]))
    def claim(self, worker: str) -> None:
        now = utcnow()
        task = self._run(
            lambda s: transitions.claimed(
                s,
                worker_id=worker,
                flow_names=[self.flow],
                user_id=None,
                prefer="",
                now=now,
                lease_seconds=LEASE,
            )
        )
        if self.gone or self.model["status"] is not Status.QUEUED:
            assert task is None, "only a queued task can be claimed"
            return
        assert task is not None and task.id == self.task_id
        self.claims[worker] = task
        self.model.update(status=Status.RUNNING, worker_id=worker, progress=0.1, error="")
        self.model["attempts"] += 1

    def _as_worker(self, worker: str, change: Callable[[AsyncSession, Task], Awaitable[Task]]) -> bool:
        """Run a worker's change on the row it claimed; True when it landed."""
        claim = self.claims.get(worker)
        if claim is None:
            return False
        before = self._row()
        try:
            self._run(lambda s: change(s, claim))
        except NotFound:
            assert not self._holds(worker), "the worker holding the lease was refused"
            assert _fields(self._row()) == _fields(before), "a refused change wrote something"
            return False
        assert self._holds(worker), "a worker without the lease changed the task"
        return True

    @precondition(lambda self: not self.gone)
    @rule(worker=st.sampled_from(["w1", "w2"]), progress=st.floats(0, 100))
    def report(self, worker: str, progress: float) -> None:
        now = utcnow()
        if self._as_worker(
            worker,
            lambda s, t: transitions.extended(
                s, t, progress=progress, execution_time=1.5, now=now, lease_seconds=LEASE
            ),
        ):
            self.model["progress"] = running_progress(progress)

    @precondition(lambda self: not self.gone)
    @rule(worker=st.sampled_from(["w1", "w2"]))
    def complete(self, worker: str) -> None:
        done = [{**OUTPUTS[0], "file_size": 10, "batch_size": 1}]
        if self._as_worker(worker, lambda s, t: transitions.completed(s, t, outputs=done, now=utcnow())):
            self.model.update(status=Status.COMPLETED, progress=100.0)

    @precondition(lambda self: not self.gone)
    @rule(worker=st.sampled_from(["w1", "w2"]), error=st.text(min_size=1, max_size=20))
    def fail(self, worker: str, error: str) -> None:
        if self._as_worker(
            worker, lambda s, t: transitions.failed(s, t, error=error, execution_time=2.0, now=utcnow())
        ):
            self.model.update(status=Status.FAILED, error=error)

    @precondition(lambda self: not self.gone)
    @rule(worker=st.sampled_from(["w1", "w2"]))
    def release(self, worker: str) -> None:
        if self._as_worker(worker, lambda s, t: transitions.released(s, t, now=utcnow())):
            self.model.update(status=Status.QUEUED, worker_id=None, progress=0.0)
            self.model["attempts"] = max(0, self.model["attempts"] - 1)

    @precondition(lambda self: not self.gone and self.model["status"] is Status.RUNNING)
    @rule()
    def lease_runs_out(self) -> None:
        row = self._row()
        later = utcnow() + timedelta(seconds=LEASE + 1)
        after = self._run(lambda s: transitions.expired(s, row, now=later, max_attempts=MAX_ATTEMPTS))
        assert after is not None
        if self.model["attempts"] < MAX_ATTEMPTS:
            self.model.update(status=Status.QUEUED, worker_id=None, progress=0.0)
        else:
            self.model.update(status=Status.FAILED, error=after.error)
            assert "gave up after" in after.error

    @precondition(lambda self: not self.gone)
    @rule(force=st.booleans())
    def restart(self, force: bool) -> None:
        row = self._row()
        allowed = self.model["status"] is Status.FAILED or (force and not self.model["status"].is_terminal())
        try:
            self._run(lambda s: transitions.reset(s, row, force=force, now=utcnow()))
        except InvalidTransition:
            assert not allowed
            return
        assert allowed
        self.model.update(status=Status.QUEUED, attempts=0, worker_id=None, progress=0.0, error="")

    @precondition(lambda self: not self.gone)
    @rule()
    def cancel(self) -> None:
        self._run(lambda s: transitions.canceled(s, [self.task_id]))
        self.gone = True

    @invariant()
    def every_field_matches_the_status(self) -> None:
        row = self._row()
        if self.gone:
            assert row is None
            return
        assert row is not None
        status = Status(row.status)
        assert _fields(row)[:5] == (
            self.model["status"], self.model["attempts"], self.model["worker_id"],
            self.model["progress"], self.model["error"],
        )  # fmt: skip
        assert (row.leased_until is not None) == (status is Status.RUNNING)
        assert (row.locked_at is not None) == (status is not Status.QUEUED)
        assert (row.finished_at is not None) == status.is_terminal()
        assert (row.outputs[0]["file_size"] == 10) == (status is Status.COMPLETED)
        assert row.attempts <= MAX_ATTEMPTS or status is not Status.QUEUED


def _fields(row: Task | None) -> tuple[Any, ...]:
    assert row is not None
    return (
        Status(row.status),
        row.attempts,
        row.worker_id,
        row.progress,
        row.error,
        row.leased_until,
        row.outputs,
    )


def test_transitions_on_a_real_database(db_url: str) -> None:
    with asyncio.Runner() as runner:
        engine = create_engine(_async_url(db_url))
        runner.run(upgrade_to_head(engine))
        TaskMachine.runner, TaskMachine.sessions = runner, session_factory(engine)
        try:
            run_state_machine_as_test(
                TaskMachine,
                settings=settings(
                    max_examples=40,
                    stateful_step_count=25,
                    deadline=None,
                    suppress_health_check=[HealthCheck.too_slow],
                ),
            )
        finally:
            runner.run(engine.dispose())
