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
  ages out. Checks in flight count too, so 60 parallel guesses cannot slip past the count.
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

    def __init__(self, max_failures: int, window: float = 60.0, max_in_flight: int = 2) -> None:
        self.max_failures = max_failures
        self.window = window
        self.max_in_flight = max_in_flight
        self._failures: dict[str, deque[float]] = {}
        self._in_flight: Counter[str] = Counter()

    def _keys(self, client: str, name: str) -> list[tuple[str, int, int]]:
        # (key, failures allowed, checks in flight allowed): one user name, and the whole client
        return [
            (f"{client}\0{name}", self.max_failures, self.max_in_flight),
            (client, self.max_failures * 5, self.max_in_flight * 4),
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

    def settle(self, client: str, name: str, ok: bool) -> None:
        """The check admitted for this client and name ended: right (forget its failures) or wrong."""
        now = time.monotonic()
        for key, _f, _i in self._keys(client, name):
            self._in_flight[key] -= 1
            if self._in_flight[key] <= 0:
                del self._in_flight[key]
            if not ok:
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


class Verifier:
    def __init__(self, ttl: float = 60.0, *, max_failures: int = 10, concurrency: int | None = None) -> None:
        self.ttl = ttl
        self.guard = LoginGuard(max_failures)
        self._slots = asyncio.Semaphore(concurrency or max(1, min(4, os.cpu_count() or 1)))
        self._secret = secrets.token_bytes(32)
        self._remembered: dict[bytes, tuple[float, str]] = {}
        self._flights: dict[bytes, asyncio.Future[bool]] = {}
        # how many bcrypt checks ran: lets tests see a remembered login skip them
        self.checks = 0

    async def verify(self, session: AsyncSession, name: str, password: str, client: str = "") -> UserInfo:
        user = await db_users.get(session, name) if 0 < len(name) <= 128 else None
        stored = user.password_hash if user is not None and not user.disabled else None
        key = hmac.new(self._secret, f"{name}\0{password}".encode(), hashlib.sha256).digest()
        if stored is not None and self._is_remembered(key, stored):
            return _info(user)  # type: ignore[arg-type]
        if not await self._shared_check(key, client, name, password, stored):
            raise Unauthorized(_WRONG)
        assert user is not None and stored is not None
        self._remember(key, stored)
        return _info(user)

    def _is_remembered(self, key: bytes, stored: str) -> bool:
        hit = self._remembered.get(key)
        return hit is not None and hit[0] > time.monotonic() and hmac.compare_digest(hit[1], stored)

    def _remember(self, key: bytes, stored: str) -> None:
        if len(self._remembered) >= _REMEMBERED_MAX:
            self._remembered.pop(next(iter(self._remembered)))
        self._remembered[key] = (time.monotonic() + self.ttl, stored)

    async def _shared_check(
        self, key: bytes, client: str, name: str, password: str, stored: str | None
    ) -> bool:
        flight = self._flights.get(key)
        if flight is None:
            self.guard.admit(client, name)
            flight = asyncio.ensure_future(self._check(client, name, password, stored))
            self._flights[key] = flight
            flight.add_done_callback(lambda _done: self._flights.pop(key, None))
        # a client that hangs up must not cancel a check others wait for
        return await asyncio.shield(flight)

    async def _check(self, client: str, name: str, password: str, stored: str | None) -> bool:
        ok = False
        try:
            async with self._slots:
                self.checks += 1
                ok = await asyncio.to_thread(_matches, password, stored)
        finally:
            self.guard.settle(client, name, ok)
        return ok


def _matches(password: str, stored: str | None) -> bool:
    matched = passwords.check_password(password, stored or passwords.dummy_hash())
    return matched and stored is not None


def _info(user: User) -> UserInfo:
    return UserInfo(user_id=user.user_id, full_name=user.full_name, email=user.email, is_admin=user.is_admin)
