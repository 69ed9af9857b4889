"""Queries on users."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from visionatrix.db.tables import User


async def get(session: AsyncSession, user_id: str) -> User | None:
    return await session.get(User, user_id)


async def count(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(User)) or 0)


async def add(session: AsyncSession, user: User) -> None:
    session.add(user)
    await session.flush()
