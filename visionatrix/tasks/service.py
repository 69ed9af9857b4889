"""Task lifecycle for clients: create (count, seeds, file refs), read, wait, restart, delete, priority."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import random
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from visionatrix.db import tasks as db_tasks
from visionatrix.db.tables import Task, utcnow
from visionatrix.errors import InvalidInput, InvalidTransition, NotFound, TaskFailed, TimedOut
from visionatrix.flows.graph_patch import patch_graph
from visionatrix.flows.inputs import validate_inputs
from visionatrix.flows.model import Flow
from visionatrix.schemas import UserInfo
from visionatrix.storage import Storage
from visionatrix.tasks import inputs, transitions, translation, wire, workers
from visionatrix.tasks.events import TaskEvents
from visionatrix.tasks.lifecycle import Status
from visionatrix.tasks.requests import TaskRequest
from visionatrix.tasks.signals import Signal
from visionatrix.tasks.webhook_targets import WebhookTargets

log = logging.getLogger(__name__)

MAX_SEED = 2**53 - 1


@dataclass(frozen=True)
class Limits:
    """What one request may store: pixels per input image, and input text times ``count``."""

    max_image_pixels: int = 50_000_000
    # count x the size of one task's text inputs: bounds what one create adds to the database
    max_create_text_bytes: int = 1024 * 1024
    # the most tasks one listing answer carries when the client asks for no page
    max_list_tasks: int = 1000


class TaskService:
    def __init__(
        self,
        storage: Storage,
        new_work: Signal,
        events: TaskEvents,
        *,
        sessions: async_sessionmaker[AsyncSession] | None = None,
        finished: Signal | None = None,
        limits: Limits = Limits(),
        webhook_targets: WebhookTargets | None = None,
    ) -> None:
        self.storage = storage
        self.new_work = new_work
        self.events = events
        self.sessions = sessions
        self.finished = finished or Signal()
        self.limits = limits
        self.webhook_targets = webhook_targets or WebhookTargets(allow_private=True)

    # ---- create -------------------------------------------------------------------------------
    async def create(
        self, session: AsyncSession, user: UserInfo, flow: Flow, graph: dict[str, Any], req: TaskRequest
    ) -> dict[str, Any]:
        file_params = [p for p in flow.input_params if p.is_file]
        provided = {p.name for p in file_params if p.name in req.files or p.name in req.refs}
        values = validate_inputs(flow, req.values, provided)
        self._check_volume(values, req.count)
        if req.webhook_url:
            await self.webhook_targets.check(req.webhook_url)
        sources = [
            (p.name, await self._file_source(session, user, p.name, p.is_image, req))
            for p in file_params
            if p.name in provided
        ]
        parent = (
            next((ref for ref in req.refs.values() if ref.node_id is not None), None)
            if req.child_task
            else None
        )
        per_task = await translation.prepare(session, user, flow, values, req)
        ids: list[int] = []
        try:
            for i, (task_values, translated) in enumerate(per_task):
                seed = req.seed + i if req.seed is not None else random.randint(0, MAX_SEED)
                task = await db_tasks.add(
                    session,
                    name=flow.name,
                    user_id=user.user_id,
                    priority=req.priority,
                    group_scope=req.group_scope,
                    input_params={**task_values, "seed": seed},
                    translated_input_params=translated,
                    outputs=flow.output_templates(),
                    webhook_url=req.webhook_url,
                    webhook_headers=req.webhook_headers,
                    parent_task_id=parent.task_id if parent else None,
                    parent_task_node_id=parent.node_id if parent else None,
                )
                ids.append(task.id)
                stored = await asyncio.to_thread(inputs.store_inputs, self.storage, task.id, sources)
                task.input_files = [
                    {"file_name": s.file_name, "file_size": s.file_size} for s in stored.values()
                ]
                names = {param: s.file_name for param, s in stored.items()}
                task.flow_graph = patch_graph(
                    graph,
                    flow,
                    {**task_values, **(translated or {})},
                    names,
                    seed if flow.is_seed_supported else None,
                )
                self.events.record(session, task, "created")
            await session.commit()
        except BaseException:
            # nothing was queued: no input file of these tasks may stay behind
            await asyncio.to_thread(self._delete_files, ids)
            raise
        self.new_work.fire()
        log.info("tasks created", extra={"action": "task_created", "task_ids": ids, "flow": flow.name})
        return {"tasks_ids": ids, "outputs": flow.output_templates()}

    def _check_volume(self, values: dict[str, Any], count: int) -> None:
        size = len(json.dumps(values, ensure_ascii=False).encode())
        if size * count > self.limits.max_create_text_bytes:
            raise InvalidInput(
                f"count={count} tasks of {size} bytes of input text each exceed the "
                f"{self.limits.max_create_text_bytes} bytes one request may create: "
                "create fewer tasks at once or send shorter inputs"
            )

    async def _file_source(
        self, session: AsyncSession, user: UserInfo, param: str, is_image: bool, req: TaskRequest
    ) -> inputs.Source:
        if param in req.files:
            max_pixels = self.limits.max_image_pixels
            return await asyncio.to_thread(
                inputs.checked_upload, param, req.files[param], is_image, max_pixels
            )
        return await inputs.referenced_file(session, self.storage, user, param, req.refs[param])

    # ---- read ---------------------------------------------------------------------------------
    async def owned(self, session: AsyncSession, user: UserInfo, task_id: int) -> Task:
        task = await db_tasks.get(session, task_id)
        if task is None or task.user_id != user.user_id:
            raise NotFound(f"task {task_id} not found")
        return task

    async def owned_or_admin(self, session: AsyncSession, user: UserInfo, task_id: int) -> Task:
        """Workers running as an admin read any user's task inputs."""
        if not user.is_admin:
            return await self.owned(session, user, task_id)
        task = await db_tasks.get(session, task_id)
        if task is None:
            raise NotFound(f"task {task_id} not found")
        return task

    async def details(self, session: AsyncSession, user: UserInfo, task_id: int) -> dict[str, Any]:
        task = await self.owned(session, user, task_id)
        children = await db_tasks.children_ids(session, [task.id])
        warnings = await workers.waiting_warnings(session, [task])
        return wire.details(task, children[task.id], warnings.get(task.id, ""))

    async def listing(
        self,
        session: AsyncSession,
        user: UserInfo,
        *,
        name: str | None,
        group_scope: int | None,
        only_parent: bool,
        short: bool = False,
        limit: int | None = None,
        offset: int = 0,
    ) -> tuple[dict[str, Any], int]:
        """The user's tasks keyed by id (at most ``limit``, else the newest ``max_list_tasks``), and
        how many there are in all."""
        rows, total = await db_tasks.list_for_user(
            session,
            user.user_id,
            name=name,
            group_scope=group_scope,
            only_parent=only_parent,
            limit=min(limit or self.limits.max_list_tasks, self.limits.max_list_tasks),
            offset=offset,
        )
        children = await db_tasks.children_ids(session, [t.id for t in rows])
        warnings = await workers.waiting_warnings(session, rows)
        shape = wire.summary if short else wire.details
        return {str(t.id): shape(t, children[t.id], warnings.get(t.id, "")) for t in rows}, total

    async def result_path(
        self, session: AsyncSession, user: UserInfo, task_id: int, node_id: int, batch_index: int
    ) -> Path:
        files = await self._result_files(session, user, task_id, node_id)
        if batch_index >= len(files) or batch_index < 0:
            raise NotFound(f"task {task_id} has no result {batch_index} for node {node_id}")
        return files[batch_index]

    async def result_zip(
        self, session: AsyncSession, user: UserInfo, task_id: int, node_id: int | None
    ) -> bytes:
        task = await self.owned(session, user, task_id)
        nodes = [node_id] if node_id is not None else [int(o["comfy_node_id"]) for o in task.outputs]
        paths: list[Path] = []
        for node in nodes:
            paths += await self._result_files(session, user, task_id, node)
        return await asyncio.to_thread(zip_files, paths)

    async def _result_files(
        self, session: AsyncSession, user: UserInfo, task_id: int, node_id: int
    ) -> list[Path]:
        task = await self.owned(session, user, task_id)
        if task.status != Status.COMPLETED:
            raise InvalidInput(f"task {task_id} has not finished yet (status: {task.status})")
        if node_id not in {int(o["comfy_node_id"]) for o in task.outputs}:
            raise NotFound(f"task {task_id} has no output node {node_id}")
        files = self.storage.output_files(task_id, node_id)
        if not files:
            raise NotFound(f"task {task_id} has no result files for node {node_id}")
        return files

    async def input_path(self, session: AsyncSession, task: Task, input_index: int) -> Path:
        if not 0 <= input_index < len(task.input_files):
            raise NotFound(f"task {task.id} has no input file {input_index}")
        return self.storage.input_path(task.input_files[input_index]["file_name"])

    async def wait_all(self, user: UserInfo, ids: Sequence[int], timeout: float) -> bytes:
        """Wait until every task completed; a ZIP of all their outputs.

        ``TaskFailed`` as soon as one fails, ``NotFound`` when one is deleted, ``TimedOut`` after
        ``timeout`` seconds. The queue's ``finished`` signal wakes the wait; a task finished by
        another server process is seen by a re-check twice a second.
        """
        assert self.sessions is not None, "waiting needs the session factory"
        deadline = time.monotonic() + timeout
        pending = list(ids)
        while pending:
            async with self.sessions() as session:
                states = [await self.owned(session, user, task_id) for task_id in pending]
            failed = next((t for t in states if t.status == Status.FAILED), None)
            if failed is not None:
                raise TaskFailed(f"task {failed.id} failed: {failed.error}")
            pending = [t.id for t in states if t.status != Status.COMPLETED]
            left = deadline - time.monotonic()
            if pending and left <= 0:
                raise TimedOut(f"timed out after {timeout:g} s waiting for the task(s)")
            if pending:
                await self.finished.wait(min(0.5, max(0.01, left)))
        async with self.sessions() as session:
            return await self._outputs_zip(session, user, ids)

    async def _outputs_zip(self, session: AsyncSession, user: UserInfo, ids: Sequence[int]) -> bytes:
        paths: list[Path] = []
        for task_id in ids:
            task = await self.owned(session, user, task_id)
            for output in task.outputs:
                paths += self.storage.output_files(task_id, int(output["comfy_node_id"]))
        return await asyncio.to_thread(zip_files, paths)

    # ---- change -------------------------------------------------------------------------------
    async def restart(self, session: AsyncSession, user: UserInfo, task_id: int, force: bool) -> None:
        task = await self.owned(session, user, task_id)
        # Visionatrix's answers (400) and words for the two refusals clients see
        if task.status == Status.COMPLETED:
            raise InvalidTransition(f"task {task_id} already finished")
        if task.status != Status.FAILED and not force:
            raise InvalidTransition(f"task {task_id} has no error set (force=true restarts it anyway)")
        task = await transitions.reset(session, task, force=force, now=utcnow())
        self.events.record(session, task, "restarted")
        await asyncio.to_thread(self.storage.delete_outputs, task.id)
        await session.commit()
        self.new_work.fire()

    async def set_priority(self, session: AsyncSession, user: UserInfo, task_id: int, priority: int) -> None:
        task = await self.owned(session, user, task_id)
        if task.status != Status.QUEUED:
            raise InvalidTransition(f"task {task_id} cannot be updated because it has already started")
        task.priority = priority
        task.updated_at = utcnow()
        self.events.record(session, task, "priority")
        await session.commit()

    async def delete(self, session: AsyncSession, user: UserInfo, task_id: int) -> None:
        """Delete a task with its children and files; a running one is thereby cancelled."""
        task = await self.owned(session, user, task_id)
        await self._delete_tree(session, [task.id])

    async def delete_unfinished(self, session: AsyncSession, user: UserInfo, task_id: int) -> None:
        """Delete the task unless it completed (then nothing happens, as in Visionatrix)."""
        task = await self.owned(session, user, task_id)
        if task.status != Status.COMPLETED:
            await self._delete_tree(session, [task.id])

    async def delete_matching(
        self, session: AsyncSession, user: UserInfo, name: str | None, group_scope: int | None, finished: bool
    ) -> int:
        statuses = db_tasks.FINISHED if finished else db_tasks.UNFINISHED
        ids = await db_tasks.ids_by_filter(session, user.user_id, name, group_scope, statuses)
        await self._delete_tree(session, ids)
        return len(ids)

    async def _delete_tree(self, session: AsyncSession, ids: Sequence[int]) -> None:
        every: list[int] = []
        frontier = list(ids)
        while frontier:
            every += frontier
            children = await db_tasks.children_ids(session, frontier)
            frontier = [c for kids in children.values() for c in kids if c not in every]
        await self.events.record_deleted(session, every)
        await transitions.canceled(session, every)
        await session.commit()
        await asyncio.to_thread(self._delete_files, every)
        if every:
            log.info("tasks deleted", extra={"action": "task_deleted", "task_ids": every})
            self.finished.fire()  # a client waiting on one of them learns it is gone

    def _delete_files(self, ids: Sequence[int]) -> None:
        for task_id in ids:
            self.storage.delete_task_files(task_id)


def zip_files(paths: Sequence[Path]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in paths:
            archive.write(path, path.name)
    return buffer.getvalue()
