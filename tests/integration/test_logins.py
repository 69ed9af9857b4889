"""Login verification on a real database: unknown users cost a full check, a right password is
remembered until the stored hash changes, identical checks share one bcrypt run."""

from __future__ import annotations

import asyncio

import pytest

from visionatrix import users
from visionatrix.config import _async_url
from visionatrix.db.engine import create_engine, session_factory, upgrade_to_head
from visionatrix.errors import InvalidInput, Unauthorized
from visionatrix.logins import Verifier


async def _scenario(url: str) -> list[tuple[str, int]]:
    engine = create_engine(_async_url(url))
    await upgrade_to_head(engine)
    sessions = session_factory(engine)
    verifier = Verifier(max_failures=100)
    seen: list[tuple[str, int]] = []

    async def login(name: str, password: str) -> str:
        async with sessions() as session:
            try:
                return (await verifier.verify(session, name, password, "10.0.0.1")).user_id
            except Unauthorized:
                return "401"

    try:
        async with sessions() as session:
            await users.create_user(session, "ann", "first-pw")
            with pytest.raises(InvalidInput, match="at most 1024 bytes"):
                await users.create_user(session, "huge", "x" * 1025)
        for step, call in [
            ("right", login("ann", "first-pw")),
            ("remembered", login("ann", "first-pw")),
            ("unknown user", login("nobody", "first-pw")),
            ("wrong password", login("ann", "second-pw")),
        ]:
            seen.append((f"{step}: {await call}", verifier.checks))
        async with sessions() as session:
            await users.set_password(session, "ann", "second-pw")
        seen.append((f"old password after change: {await login('ann', 'first-pw')}", verifier.checks))
        answers = await asyncio.gather(*(login("ann", "second-pw") for _ in range(5)))
        seen.append((f"five at once: {sorted(set(answers))}", verifier.checks))
    finally:
        await engine.dispose()
    return seen


def test_verification_costs_and_memory(db_url: str) -> None:
    assert asyncio.run(_scenario(db_url)) == [
        ("right: ann", 1),
        ("remembered: ann", 1),  # no bcrypt for a remembered login
        ("unknown user: 401", 2),  # an unknown user costs the same check as a wrong password
        ("wrong password: 401", 3),
        ("old password after change: 401", 4),  # the changed hash ends the remembered login
        ("five at once: ['ann']", 5),  # identical checks at once share one bcrypt run
    ]
