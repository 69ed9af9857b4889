"""Users: creation, password changes, and the first admin in SERVER mode. Logins: ``logins.py``."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.ext.asyncio import AsyncSession

from visionatrix import passwords
from visionatrix.db import users as db_users
from visionatrix.db.tables import User
from visionatrix.errors import Conflict, InvalidInput, NotFound
from visionatrix.logins import Verifier
from visionatrix.schemas import UserInfo

log = logging.getLogger(__name__)

DEFAULT_ADMIN = UserInfo(user_id="admin", full_name="Admin", email="admin@example.com", is_admin=True)
DEV_PASSWORD = "admin"
_LOOPBACK = {"localhost", "127.0.0.1", "::1", "[::1]"}

__all__ = ["DEFAULT_ADMIN", "Verifier", "bootstrap_admin", "create_user", "hash_password", "set_password"]


def hash_password(password: str) -> str:
    return passwords.hash_password(password)


def _info(user: User) -> UserInfo:
    return UserInfo(user_id=user.user_id, full_name=user.full_name, email=user.email, is_admin=user.is_admin)


def _checked_password(password: str) -> str:
    if not password:
        raise InvalidInput("password must not be empty")
    size = len(password.encode())
    if size > passwords.MAX_PASSWORD_BYTES:
        raise InvalidInput(
            f"password is {size} bytes long; at most {passwords.MAX_PASSWORD_BYTES} bytes are accepted"
        )
    return password


async def create_user(
    session: AsyncSession,
    name: str,
    password: str,
    *,
    admin: bool = False,
    full_name: str = "",
    email: str = "",
) -> UserInfo:
    if not name or ":" in name or len(name) > 128:
        raise InvalidInput("user name must be 1..128 characters without ':'")
    _checked_password(password)
    if await db_users.get(session, name) is not None:
        raise Conflict(f"user {name!r} already exists")
    hashed = await asyncio.to_thread(hash_password, password)
    user = User(user_id=name, password_hash=hashed, is_admin=admin, full_name=full_name or name, email=email)
    await db_users.add(session, user)
    await session.commit()
    return _info(user)


async def set_password(session: AsyncSession, name: str, password: str) -> None:
    """A new password; logins remembered with the old one end on their next request."""
    _checked_password(password)
    user = await db_users.get(session, name)
    if user is None:
        raise NotFound(f"user {name!r} not found")
    user.password_hash = await asyncio.to_thread(hash_password, password)
    await session.commit()


async def bootstrap_admin(session: AsyncSession, admin_password: str, host: str) -> None:
    """SERVER mode with no users: create ``admin``; the development password only on loopback."""
    if await db_users.count(session) > 0:
        return
    password = admin_password or DEV_PASSWORD
    if password == DEV_PASSWORD and host not in _LOOPBACK:
        raise InvalidInput(
            f"refusing to create user 'admin' with the default password while bound to {host}: "
            "set VIX_ADMIN_PASSWORD (or create a user with `visionatrix create-user`)"
        )
    if password == DEV_PASSWORD:
        log.warning(
            "!!! created user 'admin' with the DEFAULT password 'admin' - for development only; "
            "set VIX_ADMIN_PASSWORD before exposing this server !!!"
        )
    await create_user(session, "admin", password, admin=True, full_name="Admin")
