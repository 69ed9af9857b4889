"""The task state machine: transitions, terminal states, expiry bounded by attempts (Hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from visionatrix.errors import Conflict
from visionatrix.tasks.lifecycle import Status, running_progress, transition


def test_terminal_statuses() -> None:
    assert {s for s in Status if s.is_terminal()} == {Status.COMPLETED, Status.FAILED, Status.CANCELED}


@pytest.mark.parametrize(
    ("start", "action"),
    [
        (Status.COMPLETED, "claim"),
        (Status.QUEUED, "complete"),
        (Status.COMPLETED, "restart"),
        (Status.CANCELED, "cancel"),
    ],
)
def test_forbidden_transitions_are_conflicts(start: Status, action: str) -> None:
    with pytest.raises(Conflict, match=action.split("_")[-1]):
        transition(start, action)


def test_running_progress_never_shows_done() -> None:
    assert running_progress(100.0) == 99.9
    assert running_progress(0.0) == 0.1
    assert running_progress(42.0) == 42.0


class TaskMachine(RuleBasedStateMachine):
    """A model of one task under claims, expiries, results, failures and restarts."""

    def __init__(self) -> None:
        super().__init__()
        self.status = Status.QUEUED
        self.attempts = 0
        self.max_attempts = 3

    @precondition(lambda self: self.status is Status.QUEUED)
    @rule()
    def claim(self) -> None:
        self.status = transition(self.status, "claim")
        self.attempts += 1

    @precondition(lambda self: self.status is Status.RUNNING)
    @rule()
    def expire(self) -> None:
        self.status = transition(
            self.status, "expire", attempts=self.attempts, max_attempts=self.max_attempts
        )

    @precondition(lambda self: self.status is Status.RUNNING)
    @rule(ok=st.booleans())
    def finish(self, ok: bool) -> None:
        self.status = transition(self.status, "complete" if ok else "fail")

    @precondition(lambda self: self.status is Status.FAILED)
    @rule()
    def restart(self) -> None:
        self.status = transition(self.status, "restart")
        self.attempts = 0

    @rule(action=st.sampled_from(["claim", "complete", "restart", "cancel", "release"]))
    def anything(self, action: str) -> None:
        try:
            after = transition(self.status, action)
        except Conflict:
            return
        assert not self.status.is_terminal() or action == "restart"
        if action == "claim":
            self.attempts += 1
        if action == "restart":
            self.attempts = 0
        self.status = after

    @invariant()
    def attempts_are_bounded(self) -> None:
        # a task is never claimed again once it used up its attempts through expiry
        if self.status is Status.QUEUED:
            assert self.attempts <= self.max_attempts + 1


TestTaskMachine = TaskMachine.TestCase
