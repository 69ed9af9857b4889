"""The worker loop: long-poll for a task this worker can run, run it, repeat; back off when the
server is away. Stops cleanly on SIGTERM/SIGINT between tasks (a running task is released)."""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from visionatrix.client import Client, ClientError
from visionatrix.engine import registry
from visionatrix.engine.context import ModelStore
from visionatrix.worker.identity import worker_details
from visionatrix.worker.runner import run_task

log = logging.getLogger(__name__)

LONG_POLL_SECONDS = 25.0
_FLOWS_TTL = 5.0


@dataclass
class WorkerOptions:
    worker_id: str
    models_dir: Path
    device: str = "cpu"
    precision: str = "auto"
    heartbeat_every: float = 2.0
    max_tasks: int | None = None  # stop after this many tasks (tests, one-shot workers)


class RunnableFlows:
    """Which installed flows this worker can run: every node class implemented, every model on disk."""

    def __init__(self, client: Client, models_dir: Path) -> None:
        self.client = client
        self.models_dir = models_dir
        self._names: list[str] = []
        self.known: list[str] = []  # every installed flow, runnable here or not
        self._at = -_FLOWS_TTL

    def invalidate(self) -> None:
        self._at = -_FLOWS_TTL

    def names(self) -> list[str]:
        if time.monotonic() - self._at >= _FLOWS_TTL:
            installed = self.client.flows()
            self.known = [f["name"] for f in installed]
            self._names = [f["name"] for f in installed if self._runnable(f)]
            self._at = time.monotonic()
        return self._names

    def _runnable(self, flow: dict[str, Any]) -> bool:
        if registry.missing(flow.get("node_classes") or []):
            return False
        return all(
            (self.models_dir / m.get("folder", "") / m["filename"]).is_file()
            for m in flow.get("models") or []
        )


def serve(client: Client, models: ModelStore, options: WorkerOptions, stop: threading.Event) -> int:
    """Run until ``stop`` is set (or ``max_tasks`` are done). Returns the number of tasks run."""
    flows = RunnableFlows(client, options.models_dir)
    details = worker_details(options.worker_id, options.device)
    last_name, done, failures = "", 0, 0
    log.info("worker started", extra={"action": "worker_started", "worker": options.worker_id})
    while not stop.is_set() and (options.max_tasks is None or done < options.max_tasks):
        try:
            names = flows.names()
            task = client.next_task(
                details, names, last_name, wait=LONG_POLL_SECONDS, known_flows=flows.known
            )
            failures = 0
        except ClientError as exc:
            failures += 1
            delay = min(30.0, 0.5 * 2 ** min(failures, 6)) * random.uniform(0.5, 1.0)
            log.warning("server unavailable (%s); retrying in %.1f s", exc, delay)
            stop.wait(delay)
            continue
        if task is None:
            # the poll ended empty: maybe the installed flows changed; re-read them
            flows.invalidate()
            continue
        outcome = run_task(
            client,
            task,
            models,
            details,
            device=options.device,
            precision=options.precision,
            heartbeat_every=options.heartbeat_every,
        )
        log.info(
            "task %s %s",
            task["task_id"],
            outcome,
            extra={"action": f"task_{outcome}", "task_id": task["task_id"]},
        )
        last_name = task["name"]
        done += 1
    return done
