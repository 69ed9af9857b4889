"""DEFAULT mode's local workers: WORKER-mode processes pointed at this server, restarted if they die.

Each child is told its parent's pid, so it exits when this server process is gone, however that
ended (a SIGKILL included). On a stop the workers go first, while the server still answers, so
each gives its running task back to the queue.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from collections.abc import Callable

from visionatrix.worker.process import PARENT_PID_ENV, WORKER_INDEX_ENV
from visionatrix.worker.shutdown import STOP_GRACE_SECONDS

log = logging.getLogger(__name__)

_RESTART_DELAY = 1.0
_STOP_WAIT = STOP_GRACE_SECONDS + 5.0  # a worker forces its own exit after its grace; then SIGKILL


class LocalWorker:
    """One local worker process, started once the server listens, restarted until stopped."""

    def __init__(self, url: str, index: int) -> None:
        self.url = url
        self.index = index
        self.process: subprocess.Popen[bytes] | None = None
        self.stopping = threading.Event()
        self._lock = threading.Lock()

    def start_when(self, ready: Callable[[], bool]) -> None:
        threading.Thread(
            target=self._supervise, args=(ready,), daemon=True, name=f"worker-{self.index}"
        ).start()

    def _supervise(self, ready: Callable[[], bool]) -> None:
        while not ready():
            if self.stopping.wait(0.05):
                return
        while not self.stopping.is_set():
            with self._lock:
                if self.stopping.is_set():
                    return
                self.process = subprocess.Popen([sys.executable, "-m", "visionatrix", "run"], env=self._env())
            code = self.process.wait()
            if not self.stopping.is_set():
                log.warning("local worker exited with %s; restarting", code)
                self.stopping.wait(_RESTART_DELAY)

    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            "VIX_MODE": "WORKER",
            "VIX_SERVER": self.url,
            WORKER_INDEX_ENV: str(self.index),
            PARENT_PID_ENV: str(os.getpid()),
        }

    def terminate(self) -> None:
        """Ask the worker to stop (it gives its task back); returns at once."""
        with self._lock:
            self.stopping.set()
            if self.process is not None and self.process.poll() is None:
                self.process.terminate()

    def wait(self, timeout: float = _STOP_WAIT) -> None:
        if self.process is None:
            return
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log.warning("local worker %s did not stop; killing it", self.index)
            self.process.kill()
            self.process.wait()


class LocalWorkers:
    """DEFAULT mode's workers, started and stopped together."""

    def __init__(self, url: str, count: int) -> None:
        self.workers = [LocalWorker(url, index) for index in range(count)]

    def start_when(self, ready: Callable[[], bool]) -> None:
        for worker in self.workers:
            worker.start_when(ready)

    def stop(self) -> None:
        for worker in self.workers:
            worker.terminate()
        for worker in self.workers:
            worker.wait()
