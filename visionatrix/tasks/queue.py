"""The worker side of the queue: claim with a lease, progress extends it, results complete it.

A lease that runs out (worker killed, network cut) puts the task back in the queue until it
has been claimed ``max_attempts`` times; then it fails with a clear error.
"""

from __future__ import annotations

import base64
import logging
import re
import time
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from visionatrix.db import flows as db_flows
from visionatrix.db import tasks as db_tasks
from visionatrix.db import workers as db_workers
from visionatrix.db.tables import Task, utcnow
from visionatrix.errors import InvalidInput, NotFound
from visionatrix.schemas import NextTaskRequest, ProgressUpdate, UserInfo, WorkerDetails
from visionatrix.storage import Storage
from visionatrix.tasks import lifecycle, wire
from visionatrix.tasks.events import TaskEvents
from visionatrix.tasks.requests import UploadedFile
from visionatrix.tasks.signals import Signal
from visionatrix.tasks.webhooks import Webhooks, payload

log = logging.getLogger(__name__)

_RESULT_NAME = re.compile(r"^(\d+)_(\d+)_(\d+)\.([A-Za-z0-9]{1,8})$")
# how often a long-polling worker re-checks the database for work queued by another process
_RECHECK_SECONDS = 0.5


def worker_identity(user: UserInfo, details: WorkerDetails) -> str:
    explicit = (details.model_extra or {}).get("worker_id")
    if explicit:
        return str(explicit)[:256]
    device = details.devices[0].get("name", "cpu") if details.devices else "cpu"
    return f"{user.user_id}:{details.system.get('hostname', 'unknown')}:[{device}]"[:256]


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
    ) -> None:
        self.sessions = sessions
        self.storage = storage
        self.new_work = new_work
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
        worker_id = worker_identity(user, request.worker_details)
        deadline = time.monotonic() + max(0.0, wait)
        while True:
            # expired leases are the sweeper's job (api.app); it wakes waiters when it requeues one
            async with self.sessions() as session:
                if request.known_flows is not None and await self._flows_changed(
                    session, request.known_flows
                ):
                    return None
                names = await db_workers.seen(
                    session, worker_id, user.user_id, request.worker_details, request.tasks_names
                )
                task = await self._claim_once(session, user, worker_id, names, request.last_task_name)
                if task is not None:
                    self.events.record(session, task, "claimed")
                await db_workers.set_current(session, worker_id, task.id if task else None)
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
                content = self.storage.input_path(str(item["file_name"])).read_bytes()
                item["content_base64"] = base64.b64encode(content).decode("ascii")
        return {**claimed, "input_files": files}

    async def _flows_changed(self, session: AsyncSession, known: list[str]) -> bool:
        return {row.name for row in await db_flows.all_installed(session)} != set(known)

    async def _claim_once(
        self, session: AsyncSession, user: UserInfo, worker_id: str, names: list[str], prefer: str
    ) -> Task | None:
        now = utcnow()
        return await db_tasks.claim_next(
            session,
            flow_names=names,
            user_id=None if user.is_admin else user.user_id,
            prefer=prefer,
            worker_id=worker_id,
            now=now,
            leased_until=lifecycle.lease_expiry(now, self.lease_seconds),
        )

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
            or task.status != lifecycle.Status.RUNNING.value
            or (details is not None and task.worker_id != worker_identity(user, details))
        ):
            raise NotFound(f"task {task_id} is not locked by this worker (cancelled, finished or reassigned)")
        return task

    async def report(self, session: AsyncSession, user: UserInfo, update: ProgressUpdate) -> None:
        task = await self._held(session, user, update.worker_details, update.task_id)
        now = utcnow()
        task.execution_time = update.execution_time
        task.updated_at = now
        if update.error:
            task.status = lifecycle.transition(lifecycle.Status.RUNNING, "fail").value
            task.error = update.error
            task.finished_at = now
            task.leased_until = None
        else:
            task.progress = lifecycle.running_progress(update.progress)
            task.leased_until = lifecycle.lease_expiry(now, self.lease_seconds)
        self.events.record(session, task, "failed" if update.error else "progress")
        await session.commit()
        message = payload(task.id, task.progress, task.execution_time, task.error)
        if update.error:
            log.info("task failed", extra={"action": "task_failed", "task_id": task.id, "error": task.error})
            self.webhooks.final(task.webhook_url, task.webhook_headers, message)
        else:
            self.webhooks.progress(task.webhook_url, task.webhook_headers, message)

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
        by_node = _group_results(task, files)
        outputs = []
        for output in task.outputs:
            node_files = by_node[int(output["comfy_node_id"])]
            sizes = [len(f.content) for _n, _e, f in node_files]
            for index, (_n, ext, upload) in enumerate(node_files):
                self.storage.save_output(task.id, int(output["comfy_node_id"]), index, upload.content, ext)
            outputs.append({**output, "file_size": sum(sizes), "batch_size": len(node_files)})
        now = utcnow()
        task.outputs = outputs
        task.status = lifecycle.transition(lifecycle.Status.RUNNING, "complete").value
        task.progress = 100.0
        if execution_time is not None:
            task.execution_time = execution_time
        task.finished_at = now
        task.updated_at = now
        task.leased_until = None
        self.events.record(session, task, "completed")
        await session.commit()
        log.info(
            "task completed", extra={"action": "task_completed", "task_id": task.id, "worker": task.worker_id}
        )
        self.webhooks.final(
            task.webhook_url, task.webhook_headers, payload(task.id, 100.0, task.execution_time, "")
        )

    async def release(
        self, session: AsyncSession, user: UserInfo, details: WorkerDetails | None, task_id: int
    ) -> None:
        task = await self._held(session, user, details, task_id)
        task.status = lifecycle.transition(lifecycle.Status.RUNNING, "release").value
        task.progress = 0.0
        task.worker_id = None
        task.locked_at = None
        task.leased_until = None
        task.attempts = max(0, task.attempts - 1)
        task.updated_at = utcnow()
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
            changed += await self._expire(task, now)
        if changed:
            self.new_work.fire()
        return changed

    async def _expire(self, task: Task, now: datetime) -> int:
        after = lifecycle.transition(
            lifecycle.Status.RUNNING, "expire", attempts=task.attempts, max_attempts=self.max_attempts
        )
        async with self.sessions() as session:
            if after is lifecycle.Status.QUEUED:
                done = await db_tasks.requeue_if_still_expired(session, task.id, now)
            else:
                error = lifecycle.expired_error(task.attempts)
                done = await db_tasks.fail_if_still_expired(session, task.id, now, error)
            if done:
                self.events.record(session, task, after.value)
            await session.commit()
        if done:
            log.warning(
                "lease expired",
                extra={
                    "action": "lease_expired",
                    "task_id": task.id,
                    "worker": task.worker_id,
                    "now": after.value,
                },
            )
            if after is lifecycle.Status.FAILED:
                message = payload(
                    task.id, task.progress, task.execution_time, lifecycle.expired_error(task.attempts)
                )
                self.webhooks.final(task.webhook_url, task.webhook_headers, message)
        return int(done)


def _group_results(task: Task, files: list[UploadedFile]) -> dict[int, list[tuple[int, str, UploadedFile]]]:
    wanted = {int(o["comfy_node_id"]) for o in task.outputs}
    by_node: dict[int, list[tuple[int, str, UploadedFile]]] = {node: [] for node in wanted}
    for upload in files:
        match = _RESULT_NAME.match(upload.filename or "")
        if not match or int(match.group(1)) != task.id:
            raise InvalidInput(f"result file name {upload.filename!r} is not '<task_id>_<node_id>_<n>.<ext>'")
        node = int(match.group(2))
        if node not in wanted:
            raise InvalidInput(f"result file {upload.filename!r}: task {task.id} has no output node {node}")
        by_node[node].append((int(match.group(3)), match.group(4).lower(), upload))
    empty = sorted(node for node, items in by_node.items() if not items)
    if empty:
        raise InvalidInput(f"missing result files for output node(s) {', '.join(map(str, empty))}")
    return {node: sorted(items, key=lambda item: item[0]) for node, items in by_node.items()}
