"""Webhook calls: Visionatrix-compatible JSON to ``<webhook_url>/task-progress``.

Calls run in the background: a slow or dead target never delays the task or the worker's
progress report. Progress calls are best effort and throttled per task; the final call is
retried with exponential backoff.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx

log = logging.getLogger(__name__)


class Webhooks:
    def __init__(self, *, min_interval: float = 1.0, final_attempts: int = 5, backoff: float = 1.0) -> None:
        self.min_interval = min_interval
        self.final_attempts = final_attempts
        self.backoff = backoff
        self._last_sent: dict[int, float] = {}
        self._pending: set[asyncio.Task[None]] = set()
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=5.0))

    def progress(self, url: str | None, headers: dict[str, Any] | None, payload: dict[str, Any]) -> None:
        if not url:
            return
        task_id = int(payload["task_id"])
        now = time.monotonic()
        if now - self._last_sent.get(task_id, 0.0) < self.min_interval:
            return
        self._last_sent[task_id] = now
        self._spawn(self._send(url, headers, payload, attempts=1))

    def final(self, url: str | None, headers: dict[str, Any] | None, payload: dict[str, Any]) -> None:
        if not url:
            return
        self._last_sent.pop(int(payload["task_id"]), None)
        self._spawn(self._send(url, headers, payload, attempts=self.final_attempts))

    def _spawn(self, coro: Any) -> None:
        job = asyncio.get_running_loop().create_task(coro)
        self._pending.add(job)
        job.add_done_callback(self._pending.discard)

    async def _send(
        self, url: str, headers: dict[str, Any] | None, payload: dict[str, Any], attempts: int
    ) -> None:
        target = url.rstrip("/") + "/task-progress"
        clean_headers = {str(k): str(v) for k, v in (headers or {}).items()}
        for attempt in range(attempts):
            try:
                response = await self._client.post(target, json=payload, headers=clean_headers)
                if response.status_code < 500:
                    return
                reason = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                reason = type(exc).__name__
            if attempt + 1 < attempts:
                await asyncio.sleep(self.backoff * 2**attempt)
        log.warning(
            "webhook failed",
            extra={
                "action": "webhook_failed",
                "task_id": payload.get("task_id"),
                "url": target,
                "reason": reason,
            },
        )

    async def aclose(self) -> None:
        for job in list(self._pending):
            job.cancel()
        await asyncio.gather(*self._pending, return_exceptions=True)
        await self._client.aclose()


def payload(task_id: int, progress: float, execution_time: float, error: str) -> dict[str, Any]:
    return {"task_id": task_id, "progress": progress, "execution_time": execution_time, "error": error}
