"""Webhook calls: Visionatrix-compatible JSON to ``<webhook_url>/task-progress``.

Calls run in the background: a slow or dead target never delays the task or the worker's
progress report. Progress calls are best effort and throttled per task; the final call is
retried with exponential backoff. Before every call the target is checked again
(``webhook_targets``) and the call goes to the address that was checked. A call that does not
get through is logged (``webhook_failed``) with the reason: no webhook vanishes silently.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx

from visionatrix.errors import InvalidInput
from visionatrix.tasks.webhook_targets import WebhookTargets

log = logging.getLogger(__name__)
# progress throttling remembers this many tasks at most
_MAX_TRACKED = 10_000


class Webhooks:
    def __init__(
        self,
        targets: WebhookTargets | None = None,
        *,
        min_interval: float = 1.0,
        final_attempts: int = 5,
        backoff: float = 1.0,
    ) -> None:
        self.targets = targets or WebhookTargets(allow_private=True)
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
        if len(self._last_sent) >= _MAX_TRACKED:
            self._last_sent.clear()  # tasks deleted mid-run never send a final call
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
        reason = "not sent"
        for attempt in range(attempts):
            try:
                await self._post(target, headers, payload)
                return
            except InvalidInput as exc:  # the target is (now) refused: retrying cannot help
                reason = exc.message
                break
            except httpx.HTTPStatusError as exc:
                reason = f"HTTP {exc.response.status_code}"
            except Exception as exc:  # whatever it was, it is logged below, never lost
                reason = f"{type(exc).__name__}: {exc}"
            if attempt + 1 < attempts:
                await asyncio.sleep(self.backoff * 2**attempt)
        shown = target.split("?", 1)[0]  # a query may carry the receiver's token
        log.warning(
            "webhook to %s for task %s failed: %s",
            shown,
            payload.get("task_id"),
            reason,
            extra={
                "action": "webhook_failed",
                "task_id": payload.get("task_id"),
                "url": shown,
                "reason": reason,
            },
        )

    async def _post(self, url: str, headers: dict[str, Any] | None, payload: dict[str, Any]) -> None:
        """One call to the checked address; raises on a 5xx (worth retrying) or a refused target."""
        target = await self.targets.target(url)
        sent = {str(k): str(v) for k, v in (headers or {}).items()}
        sent["Host"] = target.host_header
        extensions = {"sni_hostname": target.sni_hostname} if target.sni_hostname else None
        response = await self._client.post(target.url, json=payload, headers=sent, extensions=extensions)
        if response.status_code >= 500:
            response.raise_for_status()

    async def aclose(self) -> None:
        for job in list(self._pending):
            job.cancel()
        await asyncio.gather(*self._pending, return_exceptions=True)
        await self._client.aclose()


def payload(task_id: int, progress: float, execution_time: float, error: str) -> dict[str, Any]:
    return {"task_id": task_id, "progress": progress, "execution_time": execution_time, "error": error}
