"""The worker loop: long-poll for a task this worker can run, run it, repeat.

Nothing that happens to one task ends the worker. A task deleted on the server (a 404 anywhere)
is dropped. A server that keeps failing (5xx or no answer, after the client's bounded retries), a
model file missing here, or a stop request: the task is given back to the queue (its claim
released) for this or another worker, and the loop goes on (or, when stopping, returns).
Only credentials the server refuses end the loop, with an error naming WORKER_AUTH.
"""

from __future__ import annotations

import enum
import functools
import logging
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from visionatrix import errors
from visionatrix.client import Client, ClientError, Forbidden, NotFound, Unauthorized
from visionatrix.engine.context import ModelStore
from visionatrix.errors import Cancelled, ModelMissing
from visionatrix.worker.flows import FLOWS_TTL, RunnableFlows
from visionatrix.worker.identity import worker_details
from visionatrix.worker.runner import run_task
from visionatrix.worker.shutdown import Shutdown
from visionatrix.worker.stages import CallLog, StageClock, write_record

log = logging.getLogger(__name__)

LONG_POLL_SECONDS = 25.0
_EARLY = 1.0  # a poll answered this much sooner than its wait ended early: something changed
# inputs this small come inside the claim's answer: a round trip saved, where the transfer is not
# what costs (a 1.5 MB PNG takes as long as JSON-and-base64 as in its own download)
INLINE_INPUTS = 256 * 1024


class Outcome(enum.StrEnum):
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"  # deleted on the server (Visionatrix's cancel): dropped
    RELEASED = "released"  # given back to the queue, to run again here or elsewhere


@dataclass
class WorkerOptions:
    worker_id: str
    models_dir: Path
    device: str = "cpu"
    precision: str = "auto"
    heartbeat_every: float = 2.0
    max_tasks: int | None = None  # stop after this many tasks (tests, one-shot workers)
    slots: int = 1  # tasks run at once (see serve)
    compile: str | None = None  # a torch.compile mode for the heavy networks (engine/compiled.py)
    stage_log: Path | None = None  # append each task's stage timings here (JSON lines)
    calls: CallLog | None = None  # the client's calls, when its event hooks record them


class Backoff:
    """Waits that double with each failure in a row (half of each random, capped); a success resets."""

    def __init__(self, first: float = 0.5, cap: float = 30.0) -> None:
        self.first = first
        self.cap = cap
        self.failures = 0

    def next_delay(self) -> float:
        self.failures += 1
        return min(self.cap, self.first * 2 ** min(self.failures - 1, 10)) * random.uniform(0.5, 1.0)

    def reset(self) -> None:
        self.failures = 0


class TaskBudget:
    """How many more tasks the worker may take (``max_tasks``), shared by its slots: a slot
    reserves one before it polls and returns it when the poll brings none."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.taken = 0
        self._lock = threading.Lock()

    def reserve(self) -> bool:
        with self._lock:
            if self.limit is not None and self.taken >= self.limit:
                return False
            self.taken += 1
            return True

    def release(self) -> None:
        with self._lock:
            self.taken -= 1


def serve(client: Client, models: ModelStore, options: WorkerOptions, shutdown: Shutdown) -> int:
    """Run until ``shutdown`` is requested (or ``max_tasks`` are done). Returns the number of tasks run.

    With ``slots`` > 1 that many loops run side by side, each with a task of its own: while one
    task waits on the GPU, another decodes, encodes and uploads on the CPU.
    """
    details = worker_details(options.worker_id, options.device)
    budget = TaskBudget(options.max_tasks)
    log.info("worker started", extra={"action": "worker_started", "worker": options.worker_id})
    if options.slots <= 1:
        return _slot(client, models, options, shutdown, details, budget)
    done = [0] * options.slots
    failures: list[BaseException] = []

    def run(index: int) -> None:
        try:
            done[index] = _slot(client, models, options, shutdown, details, budget)
        except BaseException as exc:  # the first failure (refused credentials) ends every slot
            failures.append(exc)
            shutdown.request(f"slot {index} ended: {exc}")

    slots = [threading.Thread(target=run, args=(i,), name=f"slot-{i}") for i in range(options.slots)]
    for thread in slots:
        thread.start()
    for thread in slots:
        thread.join()
    if failures:
        raise failures[0]
    return sum(done)


def _slot(
    client: Client,
    models: ModelStore,
    options: WorkerOptions,
    shutdown: Shutdown,
    details: dict[str, Any],
    budget: TaskBudget,
) -> int:
    flows = RunnableFlows(client, options.models_dir)
    polls, tasks = Backoff(), Backoff()
    last_name, done = "", 0
    while not shutdown.requested.is_set() and budget.reserve():
        asked = time.time()
        # while a flow waits for a model file, poll shorter so the file is noticed soon after it lands
        wait = FLOWS_TTL if flows.waiting_for_files else LONG_POLL_SECONDS
        task: dict[str, Any] | None = None
        try:
            task = _next_task(client, flows, details, last_name, wait)
            polls.reset()
        except ClientError as exc:
            delay = polls.next_delay()
            log.warning("server unavailable (%s); retrying in %.1f s", exc, delay)
            shutdown.requested.wait(delay)
            continue
        finally:
            if task is None:
                budget.release()
        if task is None:
            if time.time() - asked < wait - _EARLY:
                flows.invalidate()  # ended before its time: the installed flows changed (or the server stops)
            continue
        clock = StageClock(int(task["task_id"]), str(task.get("name", "")))
        clock.add("claim", asked, time.time())
        outcome = attempt(client, task, models, options, details, flows, shutdown, clock)
        _log_outcome(task, outcome)
        write_record(clock.record(outcome.value, options.calls), options.stage_log)
        if outcome is Outcome.RELEASED:
            shutdown.requested.wait(tasks.next_delay())  # whatever went wrong, don't take it straight back
        elif outcome is not Outcome.CANCELLED:
            tasks.reset()
        last_name = task["name"]
        done += 1
    return done


def _next_task(
    client: Client, flows: RunnableFlows, details: dict[str, Any], last_name: str, wait: float
) -> dict[str, Any] | None:
    try:
        names = flows.names()
        return client.next_task(
            details,
            names,
            last_name,
            wait=wait,
            known_flows=flows.known,
            inline_inputs=INLINE_INPUTS,
            unavailable_flows=flows.unavailable,
        )
    except (Unauthorized, Forbidden) as exc:
        raise errors.Unauthorized(_refusal(client, exc)) from None


def _refusal(client: Client, exc: ClientError) -> str:
    return (
        f"{client.base_url} refused this worker ({exc.detail}): "
        "set WORKER_AUTH=user:password to the credentials of a user of that server"
    )


def attempt(
    client: Client,
    task: dict[str, Any],
    models: ModelStore,
    options: WorkerOptions,
    details: dict[str, Any],
    flows: RunnableFlows,
    shutdown: Shutdown,
    clock: StageClock | None = None,
) -> Outcome:
    """Run one claimed task, whatever happens to it; never raises for the task's sake."""
    task_id = int(task["task_id"])
    cancel = threading.Event()
    give_back = functools.partial(release, client, task_id, details)
    try:
        with shutdown.running(cancel, give_back):
            result = run_task(
                client,
                task,
                models,
                details,
                cancel,
                device=options.device,
                precision=options.precision,
                heartbeat_every=options.heartbeat_every,
                clock=clock,
                compile_mode=options.compile,
            )
        return Outcome(result)
    except Cancelled:
        return give_back("the worker is stopping") if shutdown.requested.is_set() else Outcome.CANCELLED
    except ModelMissing as exc:
        flows.lacks_files(task["name"], [Path(where) for _name, where in exc.files])
        return give_back(exc.message)
    except NotFound:
        return Outcome.CANCELLED
    except ClientError as exc:
        return give_back(f"the server failed: {exc}")
    except Exception as exc:  # a local failure (disk full, unreadable output): not the task's fault
        log.exception("task %s could not run here", task_id, extra={"task_id": task_id})
        return give_back(f"{type(exc).__name__}: {exc}")


def release(client: Client, task_id: int, details: dict[str, Any], reason: str = "stopping") -> Outcome:
    """Give the task back to the queue; a task already gone needs nothing more."""
    log.warning(
        "giving task %s back: %s", task_id, reason, extra={"action": "task_release", "task_id": task_id}
    )
    try:
        client.release_lock(task_id, details)
    except NotFound:
        return Outcome.CANCELLED
    except ClientError as exc:
        # the server is away: its lease expiry puts the task back in the queue instead
        log.warning("could not give task %s back (%s); its lease will expire", task_id, exc)
    return Outcome.RELEASED


def _log_outcome(task: dict[str, Any], outcome: Outcome) -> None:
    log.info(
        "task %s %s",
        task["task_id"],
        outcome.value,
        extra={"action": f"task_{outcome.value}", "task_id": task["task_id"]},
    )
