"""Key-value settings: global ones (admin) and per-user ones, which override them for that user."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from visionatrix.db import settings as db_settings
from visionatrix.schemas import UserInfo


async def get_value(session: AsyncSession, user: UserInfo, key: str) -> str:
    own = await db_settings.get(session, user.user_id, key)
    if own is not None and own.value:
        return own.value
    shared = await db_settings.get(session, "", key)
    if shared is None or (shared.sensitive and not user.is_admin):
        return ""
    return shared.value


async def get_global(session: AsyncSession, key: str) -> str:
    row = await db_settings.get(session, "", key)
    return row.value if row else ""


async def set_global(session: AsyncSession, key: str, value: str, sensitive: bool) -> None:
    await db_settings.put(session, "", key, value, sensitive)
    await session.commit()


async def set_user(session: AsyncSession, user: UserInfo, key: str, value: str) -> None:
    await db_settings.put(session, user.user_id, key, value, False)
    await session.commit()
