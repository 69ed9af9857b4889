"""/vapi/tasks: create, follow, download, and manage a user's tasks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import FileResponse

from visionatrix.api.deps import CurrentUser, ServicesDep, SessionDep
from visionatrix.api.forms import TASK_FORM, parse_task_form
from visionatrix.api.uploads import read_form, upload_limits
from visionatrix.errors import InvalidInput
from visionatrix.schemas import PriorityUpdate

router = APIRouter(prefix="/vapi/tasks", tags=["tasks"])


async def _create(
    request: Request,
    flow_name: str,
    services: ServicesDep,
    session: SessionDep,
    user: CurrentUser,
    sync: bool,
) -> dict[str, Any]:
    flow, graph = await services.flows.get(session, flow_name)
    config = services.config
    form = await read_form(request, upload_limits(config.max_upload_mb, config.max_text_kb, max_files=16))
    try:
        req = await parse_task_form(form, [p.name for p in flow.input_params if p.is_file])
        if sync and req.count > 1:
            raise InvalidInput("synchronous execution does not support count > 1")
        return await services.tasks.create(session, user, flow, graph, req)
    finally:
        await form.close()


@router.put("/create/{flow_name}", openapi_extra=TASK_FORM)
async def create(
    request: Request, flow_name: str, services: ServicesDep, session: SessionDep, user: CurrentUser
) -> dict[str, Any]:
    return await _create(request, flow_name, services, session, user, sync=False)


@router.put(
    "/create-sync/{flow_name}",
    openapi_extra=TASK_FORM,
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}, "description": "a ZIP of every output file"}},
)
async def create_sync(
    request: Request,
    flow_name: str,
    services: ServicesDep,
    session: SessionDep,
    user: CurrentUser,
    timeout: float = Query(600, gt=0, le=3600),
) -> Response:
    created = await _create(request, flow_name, services, session, user, sync=True)
    data = await services.tasks.wait_all(user, created["tasks_ids"], timeout)
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


@dataclass
class Page:
    """An extension: a client that pages asks for ``limit`` tasks from ``offset`` (oldest first).
    Without ``limit`` the answer holds the newest VIX_MAX_LIST_TASKS; ``X-Total-Count`` says how
    many match in all."""

    limit: int | None = Query(None, ge=1, le=10_000)
    offset: int = Query(0, ge=0, le=2**62)


PageDep = Annotated[Page, Depends()]


async def _listing(
    services: ServicesDep,
    session: SessionDep,
    user: CurrentUser,
    where: TaskFilter,
    page: Page,
    response: Response,
    only_parent: bool,
    short: bool,
) -> dict[str, Any]:
    tasks, total = await services.tasks.listing(
        session,
        user,
        name=where.name,
        group_scope=where.group_scope,
        only_parent=only_parent,
        short=short,
        limit=page.limit,
        offset=page.offset,
    )
    response.headers["X-Total-Count"] = str(total)
    return tasks


@router.get("/progress")
async def progress_list(
    services: ServicesDep,
    session: SessionDep,
    user: CurrentUser,
    where: FilterDep,
    page: PageDep,
    response: Response,
    only_parent: bool = False,
) -> dict[str, Any]:
    return await _listing(services, session, user, where, page, response, only_parent, short=False)


@router.get("/progress-summary")
async def progress_summary(
    services: ServicesDep,
    session: SessionDep,
    user: CurrentUser,
    where: FilterDep,
    page: PageDep,
    response: Response,
    only_parent: bool = False,
) -> dict[str, Any]:
    return await _listing(services, session, user, where, page, response, only_parent, short=True)


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
