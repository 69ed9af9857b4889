"""Queries on key-value settings (global ones have user_id "")."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from visionatrix.db.tables import Setting


async def get(session: AsyncSession, user_id: str, key: str) -> Setting | None:
    return await session.get(Setting, (user_id, key))


async def put(session: AsyncSession, user_id: str, key: str, value: str, sensitive: bool) -> None:
    row = await session.get(Setting, (user_id, key))
    if row is None:
        session.add(Setting(user_id=user_id, key=key, value=value, sensitive=sensitive))
    else:
        row.value = value
        row.sensitive = sensitive


async def many(session: AsyncSession, user_ids: Collection[str], keys: Collection[str]) -> list[Setting]:
    """The settings of ``keys`` stored for any of ``user_ids`` (global ones have user_id "")."""
    rows = await session.scalars(select(Setting).where(Setting.user_id.in_(user_ids), Setting.key.in_(keys)))
    return list(rows)
