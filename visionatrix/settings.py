"""Key-value settings: global ones (admin) and per-user ones, which override them for that user.

Secrets (API keys and tokens, ``SECRET_KEYS``) are write-only: stored, used by the server and
handed to the workers that need them, never answered by a read, and always stored sensitive.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from visionatrix.db import settings as db_settings
from visionatrix.llm.settings import SECRET_KEYS as LLM_SECRET_KEYS
from visionatrix.schemas import UserInfo

SECRET_KEYS = LLM_SECRET_KEYS | {"huggingface_auth_token", "civitai_auth_token"}


async def get_value(session: AsyncSession, user: UserInfo, key: str) -> str:
    if key in SECRET_KEYS:
        return ""
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
    await db_settings.put(session, "", key, value, sensitive or key in SECRET_KEYS)
    await session.commit()


async def set_user(session: AsyncSession, user: UserInfo, key: str, value: str) -> None:
    await db_settings.put(session, user.user_id, key, value, key in SECRET_KEYS)
    await session.commit()
