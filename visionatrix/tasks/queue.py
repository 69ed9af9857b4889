"""The worker side of the queue: claim with a lease, progress extends it, results complete it.

A lease that runs out (worker killed, network cut) puts the task back in the queue until it
has been claimed ``max_attempts`` times; then it fails with a clear error. Every status change
is a named function of ``transitions``; this module decides which one, and tells the rest of
the process: ``new_work`` wakes long-polling workers, ``finished`` wakes waiting clients.
"""

from __future__ import annotations

import base64
import logging
import time
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from visionatrix.db import flows as db_flows
from visionatrix.db import tasks as db_tasks
from visionatrix.db.tables import Task, utcnow
from visionatrix.errors import NotFound
from visionatrix.schemas import NextTaskRequest, ProgressUpdate, UserInfo, WorkerDetails
from visionatrix.storage import Storage
from visionatrix.tasks import transitions, wire, workers
from visionatrix.tasks.events import TaskEvents
from visionatrix.tasks.lifecycle import Status
from visionatrix.tasks.requests import UploadedFile
from visionatrix.tasks.results import store_results
from visionatrix.tasks.signals import Signal
from visionatrix.tasks.webhooks import Webhooks, payload

log = logging.getLogger(__name__)

# how often a long-polling worker re-checks the database for work queued by another process
_RECHECK_SECONDS = 0.5


class TaskQueue:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        storage: Storage,
        new_work: Signal,
        webhooks: Webhooks,
        events: TaskEvents,
        *,
        lease_seconds: float,
        max_attempts: int,
        finished: Signal | None = None,
    ) -> None:
        self.sessions = sessions
        self.storage = storage
        self.new_work = new_work
        self.finished = finished or Signal()
        self.webhooks = webhooks
        self.events = events
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        # set when the server shuts down: open long polls answer "no task" so shutdown is prompt
        self.stopping = False

    async def claim(self, user: UserInfo, request: NextTaskRequest, wait: float) -> dict[str, Any] | None:
        """The next task for this worker, waiting up to ``wait`` seconds for one.

        A worker that sends ``known_flows`` (the installed flows it last saw) gets None at once
        when the installed flows differ, so it re-reads which flows it can run.
        """
        deadline = time.monotonic() + max(0.0, wait)
        while True:
            # expired leases are the sweeper's job (api.app); it wakes waiters when it requeues one
            async with self.sessions() as session:
                if request.known_flows is not None and await self._flows_changed(
                    session, request.known_flows
                ):
                    return None
                worker_id, names = await workers.check_in(session, user, request)
                task = await transitions.claimed(
                    session,
                    worker_id=worker_id,
                    flow_names=names,
                    user_id=None if user.is_admin else user.user_id,
                    prefer=request.last_task_name,
                    now=utcnow(),
                    lease_seconds=self.lease_seconds,
                )
                if task is not None:
                    self.events.record(session, task, "claimed")
                await workers.busy_with(session, worker_id, task.id if task else None)
                await session.commit()
            if task is not None:
                log.info(
                    "task claimed", extra={"action": "task_claimed", "task_id": task.id, "worker": worker_id}
                )
                return self._inline_inputs(wire.for_worker(task, self.lease_seconds), request.inline_inputs)
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.stopping:
                return None
            await self.new_work.wait(min(remaining, _RECHECK_SECONDS))

    def _inline_inputs(self, claimed: dict[str, Any], limit: int) -> dict[str, Any]:
        """The claim with its small input files' content inside (what the worker asked for)."""
        if limit <= 0:
            return claimed
        files = [dict(item) for item in claimed.get("input_files") or []]
        for item in files:
            if 0 < int(item.get("file_size") or 0) <= limit:
                try:
                    content = self.storage.input_path(str(item["file_name"])).read_bytes()
                except FileNotFoundError:
                    continue  # deleted meanwhile: the worker's own download will learn it (404)
                item["content_base64"] = base64.b64encode(content).decode("ascii")
        return {**claimed, "input_files": files}

    async def _flows_changed(self, session: AsyncSession, known: list[str]) -> bool:
        return {row.name for row in await db_flows.all_installed(session)} != set(known)

    async def _held(
        self, session: AsyncSession, user: UserInfo, details: WorkerDetails | None, task_id: int
    ) -> Task:
        """The task, if this worker still holds its lease; else it is gone for this worker (404).

        Visionatrix workers send no worker_details with results or lock calls; then only the
        user and the running state are checked.
        """
        task = await db_tasks.get(session, task_id)
        if (
            task is None
            or (not user.is_admin and task.user_id != user.user_id)
            or task.status != Status.RUNNING
            or (details is not None and task.worker_id != workers.identity(user, details))
        ):
            raise NotFound(f"task {task_id} is not locked by this worker (cancelled, finished or reassigned)")
        return task

    async def report(self, session: AsyncSession, user: UserInfo, update: ProgressUpdate) -> None:
        task = await self._held(session, user, update.worker_details, update.task_id)
        now = utcnow()
        if update.error:
            task = await transitions.failed(
                session, task, error=update.error, execution_time=update.execution_time, now=now
            )
        else:
            task = await transitions.extended(
                session,
                task,
                progress=update.progress,
                execution_time=update.execution_time,
                now=now,
                lease_seconds=self.lease_seconds,
            )
        self.events.record(session, task, "failed" if update.error else "progress")
        await session.commit()
        message = payload(task.id, task.progress, task.execution_time, task.error)
        if update.error:
            log.info("task failed", extra={"action": "task_failed", "task_id": task.id, "error": task.error})
            self._finished(task, message)
        else:
            self.webhooks.progress(task.webhook_url, task.webhook_headers, message)

    def _finished(self, task: Task, message: dict[str, Any]) -> None:
        self.webhooks.final(task.webhook_url, task.webhook_headers, message)
        self.finished.fire()

    async def complete(
        self,
        session: AsyncSession,
        user: UserInfo,
        details: WorkerDetails | None,
        task_id: int,
        files: list[UploadedFile],
        execution_time: float | None = None,
    ) -> None:
        task = await self._held(session, user, details, task_id)
        outputs = await store_results(self.storage, task, files)
        task = await transitions.completed(
            session, task, outputs=outputs, now=utcnow(), execution_time=execution_time
        )
        self.events.record(session, task, "completed")
        await session.commit()
        log.info(
            "task completed", extra={"action": "task_completed", "task_id": task.id, "worker": task.worker_id}
        )
        self._finished(task, payload(task.id, 100.0, task.execution_time, ""))

    async def release(
        self, session: AsyncSession, user: UserInfo, details: WorkerDetails | None, task_id: int
    ) -> None:
        task = await self._held(session, user, details, task_id)
        task = await transitions.released(session, task, now=utcnow())
        self.events.record(session, task, "released")
        await session.commit()
        self.new_work.fire()

    async def expire_leases(self) -> int:
        """Requeue (or fail, when out of attempts) tasks whose lease ran out. Returns how many."""
        now = utcnow()
        async with self.sessions() as session:
            stale = await db_tasks.expired(session, now)
        changed = 0
        for task in stale:
            async with self.sessions() as session:
                after = await transitions.expired(session, task, now=now, max_attempts=self.max_attempts)
                if after is not None:
                    self.events.record(session, after, str(after.status))
                await session.commit()
            if after is not None:
                changed += 1
                self._log_expiry(task, after)
        if changed:
            self.new_work.fire()
        return changed

    def _log_expiry(self, before: Task, after: Task) -> None:
        log.warning(
            "lease expired",
            extra={
                "action": "lease_expired",
                "task_id": before.id,
                "worker": before.worker_id,
                "now": after.status,
            },
        )
        if after.status == Status.FAILED:
            self._finished(after, payload(after.id, after.progress, after.execution_time, after.error))
