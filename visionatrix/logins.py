"""Logins: Basic credentials checked without stalling the server or telling who exists.

- bcrypt runs in threads, at most ``concurrency`` at once: a flood of logins waits there, never
  on the event loop, and the other requests go on.
- A credential seen to be right is remembered for ``ttl`` seconds (as a keyed digest, never in
  clear) while the user's stored hash stays the one it matched: a changed password or a
  disabled user ends it at once. A client polling every second pays bcrypt once a minute.
- The same credentials checked at the same moment share one bcrypt run.
- An unknown user costs the same bcrypt as a wrong password and gets the same answer.
- Failures are counted per client address and user name, and per client address: past the
  limit a minute the client gets ``TooManyAttempts`` (429, Retry-After) until the oldest failure
  ages out. Checks in flight count too, so 60 parallel guesses cannot slip past the count, and a
  client has at most one check in flight per user name and two in all: a flood from one address
  holds at most two of the pool's places, and users elsewhere keep logging in.
- Looking the user up comes after the client is admitted, and its database connection goes back
  to the pool before bcrypt runs: a refused guess costs neither.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import math
import os
import secrets
import time
from collections import Counter, deque
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from visionatrix import passwords
from visionatrix.db import users as db_users
from visionatrix.db.tables import User
from visionatrix.errors import TooManyAttempts, Unauthorized
from visionatrix.schemas import UserInfo

_REMEMBERED_MAX = 10_000
_WRONG = "invalid username or password"


class LoginGuard:
    """Counts failed logins per key in a sliding window, and checks in flight."""

    def __init__(self, max_failures: int, window: float = 60.0, max_in_flight: int = 1) -> None:
        self.max_failures = max_failures
        self.window = window
        self.max_in_flight = max_in_flight
        self._failures: dict[str, deque[float]] = {}
        self._in_flight: Counter[str] = Counter()

    def _keys(self, client: str, name: str) -> list[tuple[str, int, int]]:
        # (key, failures allowed, checks in flight allowed): one user name, and the whole client
        return [
            (f"{client}\0{name}", self.max_failures, self.max_in_flight),
            (client, self.max_failures * 5, self.max_in_flight * 2),
        ]

    def admit(self, client: str, name: str) -> None:
        """Count a check in flight, or ``TooManyAttempts`` when this client must wait."""
        now = time.monotonic()
        keys = self._keys(client, name)
        for key, failures_allowed, flights_allowed in keys:
            recent = self._recent(key, now)
            if len(recent) + self._in_flight[key] >= failures_allowed:
                wait = recent[0] + self.window - now if recent else 1.0
                raise TooManyAttempts("too many failed logins; try again later", math.ceil(max(1.0, wait)))
            if self._in_flight[key] >= flights_allowed:
                raise TooManyAttempts("too many logins at once from this client; try again", 1)
        for key, _f, _i in keys:
            self._in_flight[key] += 1

    def settle(self, client: str, name: str, ok: bool | None) -> None:
        """The check admitted for this client and name ended: right (forget its failures), wrong,
        or not made at all (None)."""
        now = time.monotonic()
        for key, _f, _i in self._keys(client, name):
            self._in_flight[key] -= 1
            if self._in_flight[key] <= 0:
                del self._in_flight[key]
            if ok is False:
                self._failures.setdefault(key, deque()).append(now)
        if ok:
            self._failures.pop(f"{client}\0{name}", None)
        if len(self._failures) > _REMEMBERED_MAX:
            self._prune(now)

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.get(key, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def _prune(self, now: float) -> None:
        for key in [k for k in self._failures if not self._recent(k, now)]:
            del self._failures[key]


@dataclass(frozen=True)
class _Account:
    info: UserInfo
    stored: str


class Verifier:
    def __init__(self, ttl: float = 60.0, *, max_failures: int = 10, concurrency: int | None = None) -> None:
        self.ttl = ttl
        self.guard = LoginGuard(max_failures)
        self._slots = asyncio.Semaphore(concurrency or max(1, min(4, os.cpu_count() or 1)))
        self._secret = secrets.token_bytes(32)
        self._remembered: dict[bytes, tuple[float, str]] = {}
        self._flights: dict[bytes, asyncio.Future[_Account | None]] = {}
        # how many bcrypt checks ran: lets tests see a remembered login skip them
        self.checks = 0

    async def verify(self, session: AsyncSession, name: str, password: str, client: str = "") -> UserInfo:
        key = hmac.new(self._secret, f"{name}\0{password}".encode(), hashlib.sha256).digest()
        remembered = self._remembered.get(key)
        if remembered is not None and remembered[0] > time.monotonic():
            account = await _account(session, name)
            if account is not None and hmac.compare_digest(account.stored, remembered[1]):
                return account.info
        account = await self._shared_check(session, key, client, name, password)
        if account is None:
            raise Unauthorized(_WRONG)
        self._remember(key, account.stored)
        return account.info

    def _remember(self, key: bytes, stored: str) -> None:
        if len(self._remembered) >= _REMEMBERED_MAX:
            self._remembered.pop(next(iter(self._remembered)))
        self._remembered[key] = (time.monotonic() + self.ttl, stored)

    async def _shared_check(
        self, session: AsyncSession, key: bytes, client: str, name: str, password: str
    ) -> _Account | None:
        while (flight := self._flights.get(key)) is not None:
            await asyncio.wait({flight})
            if not flight.cancelled():  # else its request went away: check on our own
                return flight.result()
        # a refused guess costs neither a database query nor a bcrypt run
        self.guard.admit(client, name)
        flight = asyncio.get_running_loop().create_future()
        self._flights[key] = flight  # before any await: the same credentials now wait for this
        ok: bool | None = None
        try:
            account = await _account(session, name)
            matched = await self._check(password, account)
            ok = matched is not None
            flight.set_result(matched)
            return matched
        finally:
            self._flights.pop(key, None)
            if not flight.done():
                flight.cancel()
            self.guard.settle(client, name, ok)

    async def _check(self, password: str, account: _Account | None) -> _Account | None:
        async with self._slots:
            self.checks += 1
            ok = await asyncio.to_thread(_matches, password, account.stored if account else None)
        return account if ok else None


async def _account(session: AsyncSession, name: str) -> _Account | None:
    """The user's details and stored hash, if the user may log in. The session's connection goes
    back to the pool at once: it is not held while bcrypt runs."""
    user = await db_users.get(session, name) if 0 < len(name) <= 128 else None
    found = None if user is None or user.disabled else _Account(_info(user), user.password_hash)
    await session.rollback()
    return found


def _matches(password: str, stored: str | None) -> bool:
    matched = passwords.check_password(password, stored or passwords.dummy_hash())
    return matched and stored is not None


def _info(user: User) -> UserInfo:
    return UserInfo(user_id=user.user_id, full_name=user.full_name, email=user.email, is_admin=user.is_admin)
