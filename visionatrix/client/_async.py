"""The asynchronous client: :class:`visionatrix.client.Client`'s twin over one httpx.AsyncClient.

Same methods, same arguments, same errors; each one that talks to the server is ``async``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx

from visionatrix.client import _calls, _outcome, _sse
from visionatrix.client._connection import PROBE_TIMEOUT, httpx_options
from visionatrix.client._multipart import FileInput, FormValue, reserved_fields, task_parts
from visionatrix.client._retry import Deadline, RetryPolicy
from visionatrix.client._types import BackgroundRemoval, ResultFile, RunResult
from visionatrix.client.errors import (
    ClientError,
    InvalidResponse,
    ServerError,
    ServiceUnavailable,
    Timeout,
    error_from_response,
)

logger = logging.getLogger(__name__)

BACKGROUND_FLOW = "remove_background_birefnet"
# A plain function or a coroutine function; the async client awaits what it returns when it can.
ProgressCallback = Callable[[dict[str, Any]], Any]


class AsyncClient:
    """A Visionatrix server seen from async Python; the twin of :class:`Client` (see its docs)."""

    def __init__(
        self,
        base_url: str | None = None,
        username: str | None = None,
        password: str | None = None,
        *,
        timeout: float = 30.0,
        retries: int = 4,
        backoff: float = 0.5,
        transport: httpx.AsyncBaseTransport | None = None,
        event_hooks: Mapping[str, list[Callable[..., Any]]] | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            transport=transport,
            event_hooks=event_hooks,
            **httpx_options(base_url, username, password, timeout),
        )
        self._policy = RetryPolicy(retries=retries, backoff=backoff)
        self._events = True  # False once the server showed it has no event stream: wait() polls

    @property
    def base_url(self) -> str:
        return str(self._http.base_url).rstrip("/")

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --- server --------------------------------------------------------------------------------

    async def is_available(self) -> bool:
        """Whether the server answers (and accepts the credentials); one quick request, never raises."""
        return await self._unavailable_reason() is None

    async def _unavailable_reason(self) -> str | None:
        try:
            response = await self._http.get(_calls.WHOAMI, timeout=PROBE_TIMEOUT)
        except Exception as exc:  # by contract the probe only answers, it never raises
            return f"server {self.base_url} is not reachable ({type(exc).__name__})"
        if response.is_success:
            return None
        return f"server {self.base_url} refused: {error_from_response(response)}"

    async def whoami(self) -> dict[str, Any]:
        return _calls.json_object(await self._send(_calls.whoami()))

    async def flows(self) -> list[dict[str, Any]]:
        """The installed flows."""
        return _calls.json_list(await self._send(_calls.flows_installed()))

    async def flows_available(self) -> list[dict[str, Any]]:
        """The flows of the catalog that are not installed (admin only)."""
        return _calls.json_list(await self._send(_calls.flows_available()))

    # --- tasks ---------------------------------------------------------------------------------

    async def create_task(
        self,
        flow: str,
        inputs: Mapping[str, FormValue] | None = None,
        files: Mapping[str, FileInput] | None = None,
        *,
        seed: int | None = None,
        count: int | None = None,
        priority: int | None = None,
        group_scope: int | None = None,
        webhook_url: str | None = None,
        webhook_headers: Mapping[str, str] | None = None,
        child_task: bool | None = None,
        translate: bool | None = None,
    ) -> list[int]:
        """Queue ``count`` tasks of ``flow``; return their ids.

        ``inputs`` are text values keyed by the flow's input names; ``files`` are images given as
        bytes, a path, a binary file object or ``(filename, bytes)``.
        """
        reserved = reserved_fields(
            seed=seed,
            count=count,
            priority=priority,
            group_scope=group_scope,
            webhook_url=webhook_url,
            webhook_headers=webhook_headers,
            child_task=child_task,
            translate=translate,
        )
        call = _calls.create_task(flow, task_parts(inputs, files, reserved))
        return _calls.created_ids(await self._send(call))

    async def progress(self, task_id: int) -> dict[str, Any]:
        """The task's details (``progress``, ``error``, ``outputs``...)."""
        return _calls.json_object(await self._send(_calls.progress(task_id)))

    async def tasks(self, name: str | None = None, group_scope: int = 1) -> dict[str, Any]:
        """The caller's tasks keyed by task id, optionally of one flow."""
        return _calls.json_object(await self._send(_calls.tasks(name, group_scope)))

    async def result(self, task_id: int, node_id: int, batch_index: int = 0) -> bytes:
        """The content of one output file."""
        return (await self._send(_calls.result(task_id, node_id, batch_index))).content

    async def results(self, task_id: int, outputs: _outcome.Outputs | None = None) -> list[ResultFile]:
        """Every file of the finished task's output nodes (or of the ``outputs`` given: dicts or node ids)."""
        task = await self.progress(task_id) if _outcome.needs_task(outputs) else None
        slots = _outcome.result_slots(task_id, _outcome.resolve_outputs(task_id, outputs, task))
        return [await self._result_file(task_id, node_id, index) for node_id, index in slots]

    async def _result_file(self, task_id: int, node_id: int, batch_index: int) -> ResultFile:
        response = await self._send(_calls.result(task_id, node_id, batch_index))
        return _calls.result_file(response, task_id, node_id, batch_index)

    async def wait(
        self,
        task_id: int,
        *,
        poll_interval: float = 1.0,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> dict[str, Any]:
        """Wait until the task is done and return it (pushed changes, else polling).

        The twin of :meth:`visionatrix.client.Client.wait`.
        """
        deadline = Deadline(timeout)
        if self._events and (task := await self._follow(task_id, deadline, on_progress)) is not None:
            return task
        while True:
            task = await self._poll(task_id, deadline)
            if task is not None:
                if on_progress is not None:
                    await _notify(on_progress, task)
                if _outcome.is_finished(task_id, task):
                    return task
            if deadline.expired():
                raise Timeout(task_id, timeout)
            await asyncio.sleep(deadline.clamp(poll_interval))

    async def _follow(
        self, task_id: int, deadline: Deadline, on_progress: ProgressCallback | None
    ) -> dict[str, Any] | None:
        """The finished task, followed over the event stream; None when polling must take over."""
        watch = _sse.TaskWatch(task_id)
        while not deadline.expired():
            try:
                async with self._http.stream(
                    "GET", _sse.EVENTS, timeout=watch.timeout(deadline.remaining()), **watch.request()
                ) as response:
                    if watch.unsupported(response):
                        await response.aread()
                        self._events = not watch.route_missing(response)
                        return None
                    async for line in response.aiter_lines():
                        task = watch.line(line)
                        if task is not None:
                            if on_progress is not None:
                                await _notify(on_progress, task)
                            if watch.finished(task):
                                return task
                        if deadline.expired():
                            return None
            except httpx.TransportError as exc:
                logger.info("task %s: event stream broke (%s); reconnecting", task_id, exc)
            if not watch.dropped():
                return None
            await asyncio.sleep(deadline.clamp(watch.backoff()))
        return None

    async def _poll(self, task_id: int, deadline: Deadline) -> dict[str, Any] | None:
        try:
            return _calls.json_object(await self._send(_calls.progress(task_id), deadline))
        except (ServiceUnavailable, ServerError) as exc:
            logger.info("task %s: server not answering (%s); still waiting", task_id, exc)
            return None

    async def run(
        self,
        flow: str,
        inputs: Mapping[str, FormValue] | None = None,
        files: Mapping[str, FileInput] | None = None,
        *,
        timeout: float | None = None,
        poll_interval: float = 1.0,
        on_progress: ProgressCallback | None = None,
        **create_kw: Any,
    ) -> RunResult:
        """Create one task, wait for it and download all of its output files."""
        _outcome.single_task(create_kw)
        task_id = (await self.create_task(flow, inputs, files, **create_kw))[0]
        task = await self.wait(task_id, poll_interval=poll_interval, timeout=timeout, on_progress=on_progress)
        return RunResult(task_id, task, await self.results(task_id, _outcome.task_outputs(task_id, task)))

    async def cancel(self, task_id: int) -> None:
        """Cancel the task: in Visionatrix this deletes it, with its files (same as :meth:`delete`)."""
        await self._send(_calls.delete_task(task_id))

    async def delete(self, task_id: int) -> None:
        """Delete the task, its child tasks and files; a running task is stopped."""
        await self._send(_calls.delete_task(task_id))

    async def restart(self, task_id: int, force: bool = False) -> None:
        """Queue a failed task again (``force``: also a running one)."""
        await self._send(_calls.restart(task_id, force))

    async def set_priority(self, task_id: int, priority: int) -> None:
        """Change the priority (0..15) of a queued task."""
        await self._send(_calls.set_priority(task_id, priority))

    async def remove_background(
        self,
        image: bytes | str | Path,
        *,
        flow: str = BACKGROUND_FLOW,
        fallback: bool = True,
        timeout: float = 300,
        input_name: str = "input_image",
    ) -> BackgroundRemoval:
        """Cut the subject out of ``image``; see :meth:`Client.remove_background`."""
        original = _outcome.read_image(image)
        if fallback and (reason := await self._unavailable_reason()):
            return _outcome.fallback(original, reason)
        try:
            done = await self.run(flow, files={input_name: original}, timeout=timeout)
            return _outcome.cut_out(done)
        except ClientError as exc:
            if not fallback:
                raise
            await self._abandon(exc)
            return _outcome.fallback_for(original, exc)

    async def _abandon(self, error: ClientError) -> None:
        # A timed-out task would go on using the server for a result nobody will read.
        if isinstance(error, Timeout):
            with contextlib.suppress(ClientError):
                await self.cancel(error.task_id)

    # --- worker API ----------------------------------------------------------------------------

    async def next_task(
        self,
        worker_details: dict[str, Any],
        tasks_names: list[str],
        last_task_name: str = "",
        wait: float = 0.0,
        known_flows: list[str] | None = None,
        inline_inputs: int = 0,
        unavailable_flows: dict[str, str] | None = None,
    ) -> dict[str, Any] | None:
        """Claim the next task this worker can run, or None; ``wait`` > 0 long-polls that many seconds.

        ``known_flows``: the installed flows the worker last saw; the server ends the poll at once
        (None) when they changed, so the worker re-reads what it can run. ``inline_inputs``: input
        files up to this many bytes come inside the answer (``input_files[i]["content_base64"]``).
        ``unavailable_flows``: installed flows this worker cannot run, each with the reason; the
        server shows it on tasks that no worker can take.
        """
        response = await self._send(
            _calls.next_task(
                worker_details,
                tasks_names,
                last_task_name,
                wait,
                known_flows,
                inline_inputs,
                unavailable_flows,
            )
        )
        return None if response.status_code == 204 else _calls.json_object(response)

    async def report_progress(
        self,
        task_id: int,
        progress: float,
        execution_time: float = 0.0,
        error: str = "",
        worker_details: dict[str, Any] | None = None,
    ) -> None:
        """Report the claimed task's progress; :class:`NotFound` means it was cancelled: stop it."""
        await self._send(_calls.report_progress(task_id, progress, execution_time, error, worker_details))

    async def upload_results(
        self,
        task_id: int,
        files: list[tuple[str, bytes, str]],
        worker_details: dict[str, Any] | None = None,
        execution_time: float | None = None,
    ) -> None:
        """Store the task's output files: ``(<task_id>_<node_id>_<n>.<ext>, content, content_type)``.

        ``execution_time`` (seconds) is recorded with them, so no progress report need precede this.
        """
        await self._send(_calls.upload_results(task_id, files, worker_details, execution_time))

    async def release_lock(self, task_id: int, worker_details: dict[str, Any] | None = None) -> None:
        """Give the claimed task back to the queue (another worker may take it)."""
        await self._send(_calls.release_lock(task_id, worker_details))

    async def task_input(self, task_id: int, input_index: int) -> bytes:
        """An input file of a task."""
        return (await self._send(_calls.task_input(task_id, input_index))).content

    # --- transport -----------------------------------------------------------------------------

    async def _send(self, call: _calls.Call, deadline: Deadline | None = None) -> httpx.Response:
        """Send ``call``, re-sending as the retry policy allows; 4xx/5xx answers raise."""
        deadline = deadline or Deadline(None)
        kwargs = call.httpx_kwargs(self._http.timeout)
        attempt = 0
        while True:
            try:
                response = await self._http.request(call.method, call.path, **kwargs)
            except httpx.TransportError as exc:
                delay = self._policy.after_error(exc, call, attempt, deadline)
                if delay is None:
                    raise _calls.unreachable(self.base_url, call, exc) from exc
            except httpx.HTTPError as exc:
                raise InvalidResponse(f"{call.describe()}: {exc}") from exc
            else:
                delay = self._policy.after_response(response, call, attempt, deadline)
                if delay is None:
                    return _calls.checked(response)
            await asyncio.sleep(delay)
            attempt += 1


async def _notify(on_progress: ProgressCallback, task: dict[str, Any]) -> None:
    outcome = on_progress(task)
    if inspect.isawaitable(outcome):
        await outcome
