"""Users: creation, password verification (bcrypt), and the first admin in SERVER mode."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time

import bcrypt
from sqlalchemy.ext.asyncio import AsyncSession

from visionatrix.db import users as db_users
from visionatrix.db.tables import User
from visionatrix.errors import Conflict, InvalidInput, Unauthorized
from visionatrix.schemas import UserInfo

log = logging.getLogger(__name__)

DEFAULT_ADMIN = UserInfo(user_id="admin", full_name="Admin", email="admin@example.com", is_admin=True)
DEV_PASSWORD = "admin"
_LOOPBACK = {"localhost", "127.0.0.1", "::1", "[::1]"}


def hash_password(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=12)).decode()


def _info(user: User) -> UserInfo:
    return UserInfo(user_id=user.user_id, full_name=user.full_name, email=user.email, is_admin=user.is_admin)


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
    if not password:
        raise InvalidInput("password must not be empty")
    if await db_users.get(session, name) is not None:
        raise Conflict(f"user {name!r} already exists")
    hashed = await asyncio.to_thread(hash_password, password)
    user = User(user_id=name, password_hash=hashed, is_admin=admin, full_name=full_name or name, email=email)
    await db_users.add(session, user)
    await session.commit()
    return _info(user)


class Verifier:
    """Checks Basic credentials; remembers recent successes so bcrypt runs once a minute, not per request."""

    def __init__(self, ttl: float = 60.0) -> None:
        self.ttl = ttl
        self._recent: dict[str, tuple[float, UserInfo]] = {}

    async def verify(self, session: AsyncSession, name: str, password: str) -> UserInfo:
        key = hashlib.sha256(f"{name}\0{password}".encode()).hexdigest()
        hit = self._recent.get(key)
        if hit and time.monotonic() - hit[0] < self.ttl:
            return hit[1]
        user = await db_users.get(session, name)
        if user is None or user.disabled:
            raise Unauthorized("invalid username or password")
        ok = await asyncio.to_thread(bcrypt.checkpw, password.encode(), user.password_hash.encode())
        if not ok:
            raise Unauthorized("invalid username or password")
        info = _info(user)
        self._recent[key] = (time.monotonic(), info)
        return info


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
