"""/vapi/flows: installed and available flows, install (catalog or file), delete, progress."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.datastructures import UploadFile

from visionatrix.api.deps import AdminUser, CurrentUser, ServicesDep, SessionDep
from visionatrix.api.forms import multipart_body
from visionatrix.api.uploads import read_form, upload_limits
from visionatrix.errors import InvalidInput

router = APIRouter(prefix="/vapi/flows", tags=["flows"])


@router.get("/installed")
async def installed(services: ServicesDep, session: SessionDep, user: CurrentUser) -> list[dict[str, Any]]:
    return await services.flows.installed(session)


@router.get("/not-installed")
async def not_installed(services: ServicesDep, session: SessionDep, user: AdminUser) -> list[dict[str, Any]]:
    return await services.flows.not_installed(session)


@router.post("/flow")
async def install_named(
    services: ServicesDep, session: SessionDep, user: AdminUser, name: str
) -> dict[str, Any]:
    return await services.flows.install_named(session, name)


FLOW_FILE_FORM = multipart_body(
    {
        "flow_file": {
            "type": "string",
            "format": "binary",
            "description": "a ComfyUI API-format flow with a VixUiWorkflowMetadata node",
        }
    },
    required=["flow_file"],
)


@router.put("/flow", openapi_extra=FLOW_FILE_FORM)
async def install_file(
    request: Request, services: ServicesDep, session: SessionDep, user: AdminUser
) -> dict[str, Any]:
    config = services.config
    form = await read_form(request, upload_limits(config.max_upload_mb, config.max_text_kb, max_files=4))
    try:
        part = form.get("flow_file")
        if not isinstance(part, UploadFile):
            raise InvalidInput("send the flow as a file part named 'flow_file'")
        raw = await part.read()
    finally:
        await form.close()
    return await services.flows.install_file(session, raw)


@router.delete("/flow", status_code=204)
async def delete(services: ServicesDep, session: SessionDep, user: AdminUser, name: str) -> None:
    await services.flows.delete(session, name)


@router.get("/install-progress")
async def install_progress(
    services: ServicesDep, session: SessionDep, user: AdminUser
) -> list[dict[str, Any]]:
    return await services.flows.progress(session)
