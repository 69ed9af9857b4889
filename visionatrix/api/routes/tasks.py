"""/vapi/tasks: create, follow, download, and manage a user's tasks."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse

from visionatrix.api.deps import CurrentUser, ServicesDep, SessionDep
from visionatrix.api.forms import parse_task_form
from visionatrix.schemas import PriorityUpdate
from visionatrix.tasks.service import zip_files

router = APIRouter(prefix="/vapi/tasks", tags=["tasks"])


async def _create(
    request: Request, flow_name: str, services: ServicesDep, session: SessionDep, user: CurrentUser
):
    flow, graph = await services.flows.get(session, flow_name)
    form = await request.form(max_part_size=256 * 1024 * 1024)
    try:
        req = await parse_task_form(form, [p.name for p in flow.input_params if p.is_file])
    finally:
        await form.close()
    return await services.tasks.create(session, user, flow, graph, req)


@router.put("/create/{flow_name}")
async def create(
    request: Request, flow_name: str, services: ServicesDep, session: SessionDep, user: CurrentUser
) -> dict[str, Any]:
    return await _create(request, flow_name, services, session, user)


@router.put("/create-sync/{flow_name}")
async def create_sync(
    request: Request,
    flow_name: str,
    services: ServicesDep,
    session: SessionDep,
    user: CurrentUser,
    timeout: float = Query(600, gt=0, le=3600),
) -> Response:
    created = await _create(request, flow_name, services, session, user)
    deadline = time.monotonic() + timeout
    pending = list(created["tasks_ids"])
    while pending:
        async with services.sessions() as fresh:
            states = [await services.tasks.details(fresh, user, task_id) for task_id in pending]
        failed = [s for s in states if s["error"]]
        if failed:
            detail = f"task {failed[0]['task_id']} failed: {failed[0]['error']}"
            return JSONResponse({"detail": detail}, status_code=422)
        pending = [s["task_id"] for s in states if s["status"] != "completed"]
        if pending and time.monotonic() >= deadline:
            return JSONResponse(
                {"detail": f"timed out after {timeout:g} s waiting for the task(s)"}, status_code=504
            )
        if pending:
            await services.finished.wait(min(0.5, max(0.01, deadline - time.monotonic())))
    paths = []
    for task_id in created["tasks_ids"]:
        task = await services.tasks.owned(session, user, task_id)
        for output in task.outputs:
            paths += services.storage.output_files(task_id, int(output["comfy_node_id"]))
    data = await asyncio.to_thread(zip_files, paths)
    return Response(content=data, media_type="application/zip")


@router.get("/progress/{task_id}")
async def progress(
    task_id: int, services: ServicesDep, session: SessionDep, user: CurrentUser
) -> dict[str, Any]:
    return await services.tasks.details(session, user, task_id)


@dataclass
class TaskFilter:
    """The caller's tasks of a flow (any flow when ``name`` is empty) in a group scope."""

    name: str | None = None
    group_scope: int = Query(1, ge=1, le=255)


FilterDep = Annotated[TaskFilter, Depends()]


@router.get("/progress")
async def progress_list(
    services: ServicesDep, session: SessionDep, user: CurrentUser, where: FilterDep, only_parent: bool = False
) -> dict[str, Any]:
    return await services.tasks.listing(
        session, user, name=where.name, group_scope=where.group_scope, only_parent=only_parent
    )


@router.get("/progress-summary")
async def progress_summary(
    services: ServicesDep, session: SessionDep, user: CurrentUser, where: FilterDep, only_parent: bool = False
) -> dict[str, Any]:
    return await services.tasks.listing(
        session,
        user,
        name=where.name,
        group_scope=where.group_scope,
        only_parent=only_parent,
        short=True,
    )


@router.get("/results")
async def results(
    services: ServicesDep,
    session: SessionDep,
    user: CurrentUser,
    task_id: int,
    node_id: int,
    batch_index: int = Query(0, ge=-1),
) -> Response:
    if batch_index == -1:
        data = await services.tasks.result_zip(session, user, task_id, node_id)
        return Response(content=data, media_type="application/zip")
    path = await services.tasks.result_path(session, user, task_id, node_id, batch_index)
    return FileResponse(path, filename=path.name)


@router.get("/inputs")
async def inputs(
    services: ServicesDep,
    session: SessionDep,
    user: CurrentUser,
    task_id: int,
    input_index: int = Query(0, ge=0),
) -> FileResponse:
    task = await services.tasks.owned_or_admin(session, user, task_id)
    path = await services.tasks.input_path(session, task, input_index)
    return FileResponse(path, filename=path.name)


@router.post("/restart", status_code=204)
async def restart(
    services: ServicesDep, session: SessionDep, user: CurrentUser, task_id: int, force: bool = False
) -> None:
    await services.tasks.restart(session, user, task_id, force)


@router.delete("/task", status_code=204)
async def delete_task(services: ServicesDep, session: SessionDep, user: CurrentUser, task_id: int) -> None:
    await services.tasks.delete(session, user, task_id)


@router.delete("/queue/{task_id}", status_code=204)
async def delete_queued(task_id: int, services: ServicesDep, session: SessionDep, user: CurrentUser) -> None:
    await services.tasks.delete_unfinished(session, user, task_id)


@router.delete("/queue", status_code=204)
async def delete_queue(
    services: ServicesDep, session: SessionDep, user: CurrentUser, where: FilterDep
) -> None:
    await services.tasks.delete_matching(session, user, where.name, where.group_scope, finished=False)


@router.delete("/clear", status_code=204)
async def clear(services: ServicesDep, session: SessionDep, user: CurrentUser, where: FilterDep) -> None:
    await services.tasks.delete_matching(session, user, where.name, where.group_scope, finished=True)


@router.put("/update", status_code=204)
async def update(
    body: PriorityUpdate, services: ServicesDep, session: SessionDep, user: CurrentUser, task_id: int
) -> None:
    await services.tasks.set_priority(session, user, task_id, body.priority)
