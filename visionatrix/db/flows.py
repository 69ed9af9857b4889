"""Queries on installed flows and flow installs."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from visionatrix.db.tables import FlowInstall, InstalledFlow, utcnow


async def all_installed(session: AsyncSession) -> list[InstalledFlow]:
    return list(await session.scalars(select(InstalledFlow).order_by(InstalledFlow.name)))


async def get(session: AsyncSession, name: str) -> InstalledFlow | None:
    return await session.get(InstalledFlow, name)


async def put_installed(
    session: AsyncSession, name: str, graph: dict[str, Any], flow: dict[str, Any]
) -> None:
    row = await session.get(InstalledFlow, name)
    if row is None:
        session.add(InstalledFlow(name=name, graph=graph, flow=flow))
    else:
        row.graph, row.flow, row.installed_at = graph, flow, utcnow()


async def remove(session: AsyncSession, name: str) -> bool:
    result = await session.execute(delete(InstalledFlow).where(InstalledFlow.name == name))
    await session.execute(delete(FlowInstall).where(FlowInstall.name == name))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def start_install(session: AsyncSession, name: str) -> None:
    row = await session.get(FlowInstall, name)
    now = utcnow()
    if row is None:
        session.add(FlowInstall(name=name, progress=0.0, error="", started_at=now, updated_at=now))
    else:
        row.progress, row.error, row.started_at, row.updated_at, row.finished_at = 0.0, "", now, now, None


async def set_install_progress(session: AsyncSession, name: str, progress: float) -> None:
    row = await session.get(FlowInstall, name)
    if row is not None and row.finished_at is None:
        row.progress, row.updated_at = progress, utcnow()


async def finish_install(session: AsyncSession, name: str, error: str) -> None:
    row = await session.get(FlowInstall, name)
    if row is None:
        return
    now = utcnow()
    row.error, row.updated_at, row.finished_at = error, now, now
    if not error:
        row.progress = 100.0


async def installs(session: AsyncSession) -> list[FlowInstall]:
    return list(await session.scalars(select(FlowInstall).order_by(FlowInstall.name)))
