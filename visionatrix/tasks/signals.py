"""Wake long-polling waiters the moment something they wait for happens in this process.

Other server processes sharing the database are noticed by the waiters' periodic re-check.
"""

from __future__ import annotations

import asyncio


class Signal:
    def __init__(self) -> None:
        self._event = asyncio.Event()

    def fire(self) -> None:
        # swap in a fresh event so waiters that wake never miss a later fire
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def wait(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
            return True
        except TimeoutError:
            return False
