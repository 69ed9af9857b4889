"""The task lifecycle as a pure state machine: statuses, allowed transitions, lease arithmetic.

queued ──claim──► running ──complete──► completed
  ▲                 │ ├──fail──────────► failed ──restart──► queued
  │                 │ ├──release (worker gives it back)──► queued
  │                 │ └──expire (attempts left)──► queued
  └──restart/force──┘   expire (no attempts left) ─► failed
Any non-terminal status ──cancel──► canceled (Visionatrix: cancel is delete; the row goes away).

``tasks/transitions.py`` writes each of these changes; this module only decides them.
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta

from visionatrix.errors import InvalidTransition


class Status(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"

    def is_terminal(self) -> bool:
        return self in (Status.COMPLETED, Status.FAILED, Status.CANCELED)


_ALLOWED: dict[str, frozenset[Status]] = {
    "claim": frozenset({Status.QUEUED}),
    "extend": frozenset({Status.RUNNING}),
    "complete": frozenset({Status.RUNNING}),
    "fail": frozenset({Status.RUNNING}),
    "expire": frozenset({Status.RUNNING}),
    "release": frozenset({Status.RUNNING}),
    "restart": frozenset({Status.FAILED}),
    "force_restart": frozenset({Status.FAILED, Status.RUNNING, Status.QUEUED}),
    "cancel": frozenset({Status.QUEUED, Status.RUNNING}),
}
ACTIONS = tuple(_ALLOWED)


def transition(current: Status, action: str, *, attempts: int = 0, max_attempts: int = 1) -> Status:
    """The status after ``action``; ``InvalidTransition`` when ``current`` does not allow it."""
    if current not in _ALLOWED[action]:
        raise InvalidTransition(f"cannot {action.replace('_', ' ')} a task that is {current.value}")
    if action in ("claim", "extend"):
        return Status.RUNNING
    if action == "complete":
        return Status.COMPLETED
    if action == "fail":
        return Status.FAILED
    if action == "expire":
        return Status.QUEUED if attempts < max_attempts else Status.FAILED
    if action == "cancel":
        return Status.CANCELED
    return Status.QUEUED  # restart, force_restart, release


def lease_expiry(now: datetime, lease_seconds: float) -> datetime:
    return now + timedelta(seconds=lease_seconds)


def is_expired(leased_until: datetime | None, now: datetime) -> bool:
    return leased_until is not None and leased_until <= now


def running_progress(reported: float) -> float:
    """A running task never shows 100 until every output is stored (API.md)."""
    return max(0.1, min(99.9, reported)) if reported > 0 else 0.1


def expired_error(attempts: int) -> str:
    return f"worker stopped reporting progress; gave up after {attempts} attempt(s)"
