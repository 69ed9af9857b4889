"""/vapi/flows: installed and available flows, install (catalog or file), delete, progress."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, File, UploadFile

from visionatrix.api.deps import AdminUser, CurrentUser, ServicesDep, SessionDep

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


@router.put("/flow")
async def install_file(
    services: ServicesDep, session: SessionDep, user: AdminUser, flow_file: UploadFile = File(...)
) -> dict[str, Any]:
    return await services.flows.install_file(session, await flow_file.read())


@router.delete("/flow", status_code=204)
async def delete(services: ServicesDep, session: SessionDep, user: AdminUser, name: str) -> None:
    await services.flows.delete(session, name)


@router.get("/install-progress")
async def install_progress(
    services: ServicesDep, session: SessionDep, user: AdminUser
) -> list[dict[str, Any]]:
    return await services.flows.progress(session)
