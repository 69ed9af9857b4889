"""The progress reports of a running task, sent from a side thread.

The graph never waits on the network, and the lease is extended even while one long node (a VAE
decode) reports nothing new. Reports are for people and leases, so none is sent for a task that
ends within ``quiet`` seconds: its results are its progress. Bursts of per-step updates are
coalesced to one report per ``gap``; and the task's end never waits for a pause, only for a report
already on the wire.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from visionatrix.client import Client, ClientError, NotFound

log = logging.getLogger(__name__)

QUIET_SECONDS = 0.1
GAP_SECONDS = 0.2


class Heartbeat:
    def __init__(
        self,
        client: Client,
        task_id: int,
        details: dict[str, Any],
        cancel: threading.Event,
        every: float,
        *,
        quiet: float = QUIET_SECONDS,
        gap: float = GAP_SECONDS,
    ):
        self.client = client
        self.task_id = task_id
        self.details = details
        self.cancel = cancel
        self.every = every
        self.quiet = min(quiet, every)
        self.gap = min(gap, every)
        self.started = time.monotonic()
        self.fraction = 0.0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"heartbeat-{task_id}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=30)

    def update(self, fraction: float) -> None:
        self.fraction = fraction
        self._wake.set()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def _loop(self) -> None:
        if self._stop.wait(self.quiet):
            return
        while not self._stop.is_set():
            self._wake.clear()
            if not self._send():
                return
            if self._stop.wait(self.gap):  # coalesce bursts, but wake at once to stop
                return
            self._wake.wait(self.every - self.gap)

    def _send(self) -> bool:
        """One report; False when the task is gone (cancelled on the server)."""
        percent = round(min(99.0, max(0.1, self.fraction * 100)), 1)
        try:
            self.client.report_progress(self.task_id, percent, self.elapsed, "", self.details)
        except NotFound:
            log.info("task gone; cancelling", extra={"action": "task_cancelled", "task_id": self.task_id})
            self.cancel.set()
            return False
        except ClientError as exc:
            # a network blip: the lease outlives a few missed beats
            log.warning("progress report failed: %s", exc, extra={"task_id": self.task_id})
        return True
