"""Task lifecycle for clients: create (count, seeds, file refs), read, restart, delete, priority."""

from __future__ import annotations

import io
import logging
import random
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError
from sqlalchemy.ext.asyncio import AsyncSession

from visionatrix.db import tasks as db_tasks
from visionatrix.db.tables import Task, utcnow
from visionatrix.errors import Conflict, InvalidInput, NotFound
from visionatrix.flows.graph_patch import patch_graph
from visionatrix.flows.inputs import validate_inputs
from visionatrix.flows.model import Flow
from visionatrix.schemas import UserInfo
from visionatrix.storage import Storage
from visionatrix.tasks import translation, wire
from visionatrix.tasks.events import TaskEvents
from visionatrix.tasks.lifecycle import Status, transition
from visionatrix.tasks.requests import FileRef, TaskRequest, UploadedFile
from visionatrix.tasks.signals import Signal

log = logging.getLogger(__name__)

MAX_SEED = 2**53 - 1


class TaskService:
    def __init__(self, storage: Storage, new_work: Signal, events: TaskEvents) -> None:
        self.storage = storage
        self.new_work = new_work
        self.events = events

    # ---- create -------------------------------------------------------------------------------
    async def create(
        self, session: AsyncSession, user: UserInfo, flow: Flow, graph: dict[str, Any], req: TaskRequest
    ) -> dict[str, Any]:
        file_params = [p for p in flow.input_params if p.is_file]
        provided = {p.name for p in file_params if p.name in req.files or p.name in req.refs}
        values = validate_inputs(flow, req.values, provided)
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
        ids = []
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
            stored = self._store_inputs(task.id, sources)
            task.input_files = [{"file_name": name, "file_size": size} for name, size in stored.values()]
            names = {param: name for param, (name, _size) in stored.items()}
            task.flow_graph = patch_graph(
                graph,
                flow,
                {**task_values, **(translated or {})},
                names,
                seed if flow.is_seed_supported else None,
            )
            self.events.record(session, task, "created")
            ids.append(task.id)
        await session.commit()
        self.new_work.fire()
        log.info("tasks created", extra={"action": "task_created", "task_ids": ids, "flow": flow.name})
        return {"tasks_ids": ids, "outputs": flow.output_templates()}

    async def _file_source(
        self, session: AsyncSession, user: UserInfo, param: str, is_image: bool, req: TaskRequest
    ) -> UploadedFile | Path:
        if param in req.files:
            upload = req.files[param]
            if is_image:
                return _checked_image(param, upload)
            if not upload.content:
                raise InvalidInput(f"file for input '{param}' is empty")
            return upload
        return await self._referenced_file(session, user, param, req.refs[param])

    async def _referenced_file(self, session: AsyncSession, user: UserInfo, param: str, ref: FileRef) -> Path:
        source = await db_tasks.get(session, ref.task_id)
        if source is None or source.user_id != user.user_id:
            raise InvalidInput(f"input '{param}' refers to task {ref.task_id}, which does not exist")
        if ref.node_id is not None:
            if source.status != Status.COMPLETED.value:
                raise InvalidInput(f"input '{param}' refers to task {ref.task_id}, which has not finished")
            files = self.storage.output_files(source.id, ref.node_id)
            if not files:
                raise InvalidInput(
                    f"input '{param}': task {ref.task_id} has no output for node {ref.node_id}"
                )
            return files[0]
        index = ref.input_index or 0
        if index >= len(source.input_files):
            raise InvalidInput(f"input '{param}': task {ref.task_id} has no input with index {index}")
        return self.storage.input_path(source.input_files[index]["file_name"])

    def _store_inputs(
        self, task_id: int, sources: list[tuple[str, UploadedFile | Path]]
    ) -> dict[str, tuple[str, int]]:
        stored = {}
        for index, (param, source) in enumerate(sources):
            if isinstance(source, Path):
                name = self.storage.copy_to_input(source, task_id, index)
                size = source.stat().st_size
            else:
                name = self.storage.save_input(task_id, index, source.content, _extension(source))
                size = len(source.content)
            stored[param] = (name, size)
        return stored

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
        return wire.details(task, children[task.id])

    async def listing(
        self,
        session: AsyncSession,
        user: UserInfo,
        *,
        name: str | None,
        group_scope: int | None,
        only_parent: bool,
        short: bool = False,
    ) -> dict[str, Any]:
        rows = await db_tasks.list_for_user(
            session, user.user_id, name=name, group_scope=group_scope, only_parent=only_parent
        )
        children = await db_tasks.children_ids(session, [t.id for t in rows])
        shape = wire.summary if short else wire.details
        return {str(t.id): shape(t, children[t.id]) for t in rows}

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
        return zip_files(paths)

    async def _result_files(
        self, session: AsyncSession, user: UserInfo, task_id: int, node_id: int
    ) -> list[Path]:
        task = await self.owned(session, user, task_id)
        if task.status != Status.COMPLETED.value:
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

    # ---- change -------------------------------------------------------------------------------
    async def restart(self, session: AsyncSession, user: UserInfo, task_id: int, force: bool) -> None:
        task = await self.owned(session, user, task_id)
        transition(Status(task.status), "force_restart" if force else "restart")
        _reset(task)
        self.events.record(session, task, "restarted")
        self.storage.delete_outputs(task.id)
        await session.commit()
        self.new_work.fire()

    async def set_priority(self, session: AsyncSession, user: UserInfo, task_id: int, priority: int) -> None:
        task = await self.owned(session, user, task_id)
        if task.status != Status.QUEUED.value:
            raise Conflict(f"task {task_id} is {task.status}; priority can change only while it is queued")
        task.priority = priority
        task.updated_at = utcnow()
        self.events.record(session, task, "priority")
        await session.commit()

    async def delete(self, session: AsyncSession, user: UserInfo, task_id: int) -> None:
        """Delete a task with its children and files; a running one is thereby cancelled."""
        task = await self.owned(session, user, task_id)
        await self._delete_tree(session, [task.id])

    async def delete_unfinished(self, session: AsyncSession, user: UserInfo, task_id: int) -> None:
        task = await self.owned(session, user, task_id)
        if Status(task.status).is_terminal():
            raise Conflict(f"task {task_id} has already finished")
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
        await db_tasks.delete_ids(session, every)
        await session.commit()
        for task_id in every:
            self.storage.delete_task_files(task_id)
        if every:
            log.info("tasks deleted", extra={"action": "task_deleted", "task_ids": every})


def _reset(task: Task) -> None:
    task.status = Status.QUEUED.value
    task.progress = 0.0
    task.error = ""
    task.attempts = 0
    task.worker_id = None
    task.locked_at = None
    task.leased_until = None
    task.finished_at = None
    task.execution_time = 0.0
    task.outputs = [{**o, "file_size": -1, "batch_size": -1} for o in task.outputs]
    task.updated_at = utcnow()


def _checked_image(param: str, upload: UploadedFile) -> UploadedFile:
    try:
        with Image.open(io.BytesIO(upload.content)) as img:
            img.verify()
            fmt = (img.format or "png").lower()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InvalidInput(
            f"input '{param}' is not a valid image ({upload.filename or 'unnamed file'})"
        ) from exc
    return UploadedFile(f"upload.{'jpg' if fmt == 'jpeg' else fmt}", upload.content, upload.content_type)


def _extension(upload: UploadedFile) -> str:
    suffix = Path(upload.filename or "").suffix.lstrip(".").lower()
    return suffix if suffix.isalnum() and 0 < len(suffix) <= 8 else "bin"


def zip_files(paths: Sequence[Path]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in paths:
            archive.write(path, path.name)
    return buffer.getvalue()
