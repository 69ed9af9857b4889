"""How a worker stops: on SIGTERM/SIGINT, or when the server process that started it is gone.

Stopping cancels the running task at its next cancel point (``NodeContext.progress`` or
``check_cancel``); the loop then gives the task back to the queue and returns. A node without cancel
points gets ``grace`` seconds; then the claim is given back from here and the process exits, so a
long native call can never hold a shutdown (or the server that waits for its local worker) forever.

Signals are read from a wakeup socket by a watcher thread: a Python signal handler would run only
when the main thread next executes Python code, which a long torch call can delay by minutes.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

log = logging.getLogger(__name__)

STOP_GRACE_SECONDS = 5.0  # a busy worker's running node gets this long to reach a cancel point
IDLE_GRACE_SECONDS = 1.0  # an idle worker may sit in a long poll: no reason to wait it out
_GIVE_BACK_SECONDS = 3.0  # the last give-back before a forced exit: the server may be gone too
_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_PR_SET_PDEATHSIG = 1


@dataclass
class _Running:
    cancel: threading.Event
    give_back: Callable[[], object]


class Shutdown:
    """Whether the worker is stopping; cancels and, past the grace period, gives back its tasks
    (one per slot: a worker may run several at once)."""

    def __init__(self, grace: float = STOP_GRACE_SECONDS, idle_grace: float = IDLE_GRACE_SECONDS) -> None:
        self.requested = threading.Event()
        self.grace = grace
        self.idle_grace = idle_grace
        self._lock = threading.Lock()
        self._running: list[_Running] = []
        self._done = threading.Event()

    def request(self, reason: str) -> None:
        """Stop (idempotent, any thread): cancel the running task and bound the wait for it."""
        with self._lock:
            if self.requested.is_set():
                return
            self.requested.set()
            running = list(self._running)
            for task in running:
                task.cancel.set()
        log.warning("worker stopping: %s", reason, extra={"action": "worker_stopping"})
        wait = self.grace if running else self.idle_grace
        threading.Thread(target=self._enforce, args=(wait,), daemon=True, name="shutdown-grace").start()

    def force(self, reason: str) -> None:
        """Stop now: give the running task back (briefly) and exit the process."""
        with self._lock:
            running = list(self._running)
        log.warning("worker exiting at once: %s", reason, extra={"action": "worker_forced_exit"})
        _bounded([task.give_back for task in running], _GIVE_BACK_SECONDS)
        logging.shutdown()
        os._exit(0)

    def finished(self) -> None:
        """The loop has returned on its own: nothing is left to enforce."""
        self._done.set()

    @contextlib.contextmanager
    def running(self, cancel: threading.Event, give_back: Callable[[], object]) -> Iterator[None]:
        """Mark a task as running: a stop cancels it, and past the grace period gives it back."""
        task = _Running(cancel, give_back)
        with self._lock:
            if self.requested.is_set():
                cancel.set()
            self._running.append(task)
        try:
            yield
        finally:
            with self._lock:
                self._running.remove(task)

    def _enforce(self, wait: float) -> None:
        if not self._done.wait(wait):
            self.force(f"not stopped {wait:g} s after the stop request")


def _bounded(calls: list[Callable[[], object]], seconds: float) -> None:
    """Run ``calls`` side by side; wait for them at most ``seconds`` in all."""
    threads = [threading.Thread(target=call, daemon=True, name="give-back") for call in calls]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + seconds
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))


def stop_on_signals(shutdown: Shutdown) -> None:
    """SIGTERM/SIGINT request the shutdown. Call from the main thread."""
    reader, writer = socket.socketpair()
    writer.setblocking(False)
    signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    for sig in _SIGNALS:
        # the C-level handler writes the signal number to the socket; the Python one has nothing to do
        signal.signal(sig, lambda *_: None)

    def watch() -> None:
        with reader, writer:
            while data := reader.recv(64):
                for number in (n for n in data if n in _SIGNALS):
                    shutdown.request(f"got {signal.Signals(number).name}")

    threading.Thread(target=watch, daemon=True, name="signal-watch").start()


def stop_with_parent(shutdown: Shutdown, parent: int, every: float = 0.5) -> None:
    """A local worker never outlives the server process that started it, however that ended.

    On Linux the kernel sends SIGTERM when the parent dies (PR_SET_PDEATHSIG); everywhere a
    watcher thread notices the parent pid change within ``every`` seconds.
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)

    def watch() -> None:
        while os.getppid() == parent:
            if shutdown.requested.wait(every):
                return
        shutdown.request(f"server process {parent} is gone")

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()
