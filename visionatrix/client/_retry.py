"""When to send a request again and how long to wait first; shared by the sync and async clients."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

import httpx

from visionatrix.client._calls import NOT_SENT, Call

_PERMANENT_5XX = frozenset({501, 505})  # "not implemented" does not get better by asking again


class Deadline:
    """A point in time after which waiting stops; ``None`` seconds means never."""

    def __init__(self, seconds: float | None) -> None:
        self._end = None if seconds is None else time.monotonic() + max(0.0, seconds)

    def remaining(self) -> float | None:
        return None if self._end is None else max(0.0, self._end - time.monotonic())

    def expired(self) -> bool:
        return self._end is not None and time.monotonic() >= self._end

    def clamp(self, delay: float) -> float:
        remaining = self.remaining()
        return delay if remaining is None else min(delay, remaining)

    def allows(self, delay: float) -> bool:
        remaining = self.remaining()
        return remaining is None or delay < remaining


@dataclass(frozen=True)
class RetryPolicy:
    """At most ``retries`` re-sends, waiting ``backoff * 2**attempt`` (half of it random) in between."""

    retries: int = 4
    backoff: float = 0.5
    max_delay: float = 30.0

    def after_error(
        self, exc: httpx.TransportError, call: Call, attempt: int, deadline: Deadline
    ) -> float | None:
        """Seconds to wait before re-sending after a network error, or None to give up."""
        if not (call.idempotent or isinstance(exc, NOT_SENT)):
            return None  # the server may have acted on it (a task created): never risk a duplicate
        return self._delay(attempt, deadline)

    def after_response(
        self, response: httpx.Response, call: Call, attempt: int, deadline: Deadline
    ) -> float | None:
        """Seconds to wait before re-sending after this answer, or None to keep the answer."""
        if response.status_code < 500 or response.status_code in _PERMANENT_5XX or not call.idempotent:
            return None
        return self._delay(attempt, deadline, floor=_retry_after(response))

    def _delay(self, attempt: int, deadline: Deadline, floor: float = 0.0) -> float | None:
        if attempt >= self.retries:
            return None
        step = self.backoff * 2**attempt
        # Jitter spreads the clients that all lost the same server, so they do not return in one wave.
        delay = min(self.max_delay, max(floor, step / 2 + random.uniform(0, step / 2)))
        return delay if deadline.allows(delay) else None


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(0.0, float(response.headers.get("retry-after", "0")))
    except ValueError:  # an HTTP date: not worth parsing, the backoff covers it
        return 0.0
