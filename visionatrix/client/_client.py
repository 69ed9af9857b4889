"""The synchronous client: the task API for users and the worker API for workers, over one httpx.Client.

:class:`visionatrix.client.AsyncClient` (``_async.py``) is its twin, method for method.
"""

from __future__ import annotations

import contextlib
import logging
import time
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
ProgressCallback = Callable[[dict[str, Any]], Any]


class Client:
    """A Visionatrix server seen from Python.

    ``base_url``, ``username`` and ``password`` default to ``VISIONATRIX_API_URL`` (else
    ``http://localhost:8288``), ``VISIONATRIX_USERNAME`` and ``VISIONATRIX_PASSWORD``. Network
    errors and 5xx answers are retried ``retries`` times with exponential backoff (``backoff``
    seconds first), except where a re-send could repeat an action: creating a task is re-sent
    only when the connection was never made.
    """

    def __init__(
        self,
        base_url: str | None = None,
        username: str | None = None,
        password: str | None = None,
        *,
        timeout: float = 30.0,
        retries: int = 4,
        backoff: float = 0.5,
        transport: httpx.BaseTransport | None = None,
        event_hooks: Mapping[str, list[Callable[..., Any]]] | None = None,
    ) -> None:
        self._http = httpx.Client(
            transport=transport,
            event_hooks=event_hooks,
            **httpx_options(base_url, username, password, timeout),
        )
        self._policy = RetryPolicy(retries=retries, backoff=backoff)
        self._events = True  # False once the server showed it has no event stream: wait() polls

    @property
    def base_url(self) -> str:
        return str(self._http.base_url).rstrip("/")

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- server --------------------------------------------------------------------------------

    def is_available(self) -> bool:
        """Whether the server answers (and accepts the credentials); one quick request, never raises."""
        return self._unavailable_reason() is None

    def _unavailable_reason(self) -> str | None:
        try:
            response = self._http.get(_calls.WHOAMI, timeout=PROBE_TIMEOUT)
        except Exception as exc:  # by contract the probe only answers, it never raises
            return f"server {self.base_url} is not reachable ({type(exc).__name__})"
        if response.is_success:
            return None
        return f"server {self.base_url} refused: {error_from_response(response)}"

    def whoami(self) -> dict[str, Any]:
        return _calls.json_object(self._send(_calls.whoami()))

    def flows(self) -> list[dict[str, Any]]:
        """The installed flows."""
        return _calls.json_list(self._send(_calls.flows_installed()))

    def flows_available(self) -> list[dict[str, Any]]:
        """The flows of the catalog that are not installed (admin only)."""
        return _calls.json_list(self._send(_calls.flows_available()))

    # --- tasks ---------------------------------------------------------------------------------

    def create_task(
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
        return _calls.created_ids(self._send(call))

    def progress(self, task_id: int) -> dict[str, Any]:
        """The task's details (``progress``, ``error``, ``outputs``...)."""
        return _calls.json_object(self._send(_calls.progress(task_id)))

    def tasks(self, name: str | None = None, group_scope: int = 1) -> dict[str, Any]:
        """The caller's tasks keyed by task id, optionally of one flow."""
        return _calls.json_object(self._send(_calls.tasks(name, group_scope)))

    def result(self, task_id: int, node_id: int, batch_index: int = 0) -> bytes:
        """The content of one output file."""
        return self._send(_calls.result(task_id, node_id, batch_index)).content

    def results(self, task_id: int, outputs: _outcome.Outputs | None = None) -> list[ResultFile]:
        """Every file of the finished task's output nodes (or of the ``outputs`` given: dicts or node ids)."""
        task = self.progress(task_id) if _outcome.needs_task(outputs) else None
        slots = _outcome.result_slots(task_id, _outcome.resolve_outputs(task_id, outputs, task))
        return [self._result_file(task_id, node_id, index) for node_id, index in slots]

    def _result_file(self, task_id: int, node_id: int, batch_index: int) -> ResultFile:
        response = self._send(_calls.result(task_id, node_id, batch_index))
        return _calls.result_file(response, task_id, node_id, batch_index)

    def wait(
        self,
        task_id: int,
        *,
        poll_interval: float = 1.0,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> dict[str, Any]:
        """Wait until the task is done and return it.

        The task's changes are pushed over the server's event stream (``on_progress`` sees each
        one); a server without it, or a stream that keeps breaking, is polled every
        ``poll_interval`` seconds instead. Raises :class:`TaskFailed` when the task reports an
        error, :class:`NotFound` when it is deleted, and :class:`Timeout` after ``timeout``
        seconds. An unreachable server or a 5xx does not end the wait: it goes on polling (a
        server restart is survived), still bounded by ``timeout``.
        """
        deadline = Deadline(timeout)
        if self._events and (task := self._follow(task_id, deadline, on_progress)) is not None:
            return task
        while True:
            task = self._poll(task_id, deadline)
            if task is not None:
                if on_progress is not None:
                    on_progress(task)
                if _outcome.is_finished(task_id, task):
                    return task
            if deadline.expired():
                raise Timeout(task_id, timeout)
            time.sleep(deadline.clamp(poll_interval))

    def _follow(
        self, task_id: int, deadline: Deadline, on_progress: ProgressCallback | None
    ) -> dict[str, Any] | None:
        """The finished task, followed over the event stream; None when polling must take over."""
        watch = _sse.TaskWatch(task_id)
        while not deadline.expired():
            try:
                with self._http.stream(
                    "GET", _sse.EVENTS, timeout=watch.timeout(deadline.remaining()), **watch.request()
                ) as response:
                    if watch.unsupported(response):
                        response.read()
                        self._events = not watch.route_missing(response)
                        return None
                    for line in response.iter_lines():
                        task = watch.line(line)
                        if task is not None:
                            if on_progress is not None:
                                on_progress(task)
                            if watch.finished(task):
                                return task
                        if deadline.expired():
                            return None
            except httpx.TransportError as exc:
                logger.info("task %s: event stream broke (%s); reconnecting", task_id, exc)
            if not watch.dropped():
                return None
            time.sleep(deadline.clamp(watch.backoff()))
        return None

    def _poll(self, task_id: int, deadline: Deadline) -> dict[str, Any] | None:
        try:
            return _calls.json_object(self._send(_calls.progress(task_id), deadline))
        except (ServiceUnavailable, ServerError) as exc:
            logger.info("task %s: server not answering (%s); still waiting", task_id, exc)
            return None

    def run(
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
        task_id = self.create_task(flow, inputs, files, **create_kw)[0]
        task = self.wait(task_id, poll_interval=poll_interval, timeout=timeout, on_progress=on_progress)
        return RunResult(task_id, task, self.results(task_id, _outcome.task_outputs(task_id, task)))

    def cancel(self, task_id: int) -> None:
        """Cancel the task: in Visionatrix this deletes it, with its files (same as :meth:`delete`)."""
        self._send(_calls.delete_task(task_id))

    def delete(self, task_id: int) -> None:
        """Delete the task, its child tasks and files; a running task is stopped."""
        self._send(_calls.delete_task(task_id))

    def restart(self, task_id: int, force: bool = False) -> None:
        """Queue a failed task again (``force``: also a running one)."""
        self._send(_calls.restart(task_id, force))

    def set_priority(self, task_id: int, priority: int) -> None:
        """Change the priority (0..15) of a queued task."""
        self._send(_calls.set_priority(task_id, priority))

    def remove_background(
        self,
        image: bytes | str | Path,
        *,
        flow: str = BACKGROUND_FLOW,
        fallback: bool = True,
        timeout: float = 300,
        input_name: str = "input_image",
    ) -> BackgroundRemoval:
        """Cut the subject out of ``image`` with a background-removal flow.

        With ``fallback`` (the default) no server-side failure raises: an unreachable server, a
        failed or refused task, or a timeout give back the original bytes with ``fell_back=True``
        and the reason. Without it those errors raise. An unreadable local path always raises OSError.
        """
        original = _outcome.read_image(image)
        if fallback and (reason := self._unavailable_reason()):
            return _outcome.fallback(original, reason)
        try:
            return _outcome.cut_out(self.run(flow, files={input_name: original}, timeout=timeout))
        except ClientError as exc:
            if not fallback:
                raise
            self._abandon(exc)
            return _outcome.fallback_for(original, exc)

    def _abandon(self, error: ClientError) -> None:
        # A timed-out task would go on using the server for a result nobody will read.
        if isinstance(error, Timeout):
            with contextlib.suppress(ClientError):
                self.cancel(error.task_id)

    # --- worker API ----------------------------------------------------------------------------

    def next_task(
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
        response = self._send(
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

    def report_progress(
        self,
        task_id: int,
        progress: float,
        execution_time: float = 0.0,
        error: str = "",
        worker_details: dict[str, Any] | None = None,
    ) -> None:
        """Report the claimed task's progress; :class:`NotFound` means it was cancelled: stop it."""
        self._send(_calls.report_progress(task_id, progress, execution_time, error, worker_details))

    def upload_results(
        self,
        task_id: int,
        files: list[tuple[str, bytes, str]],
        worker_details: dict[str, Any] | None = None,
        execution_time: float | None = None,
    ) -> None:
        """Store the task's output files: ``(<task_id>_<node_id>_<n>.<ext>, content, content_type)``.

        ``execution_time`` (seconds) is recorded with them, so no progress report need precede this.
        """
        self._send(_calls.upload_results(task_id, files, worker_details, execution_time))

    def release_lock(self, task_id: int, worker_details: dict[str, Any] | None = None) -> None:
        """Give the claimed task back to the queue (another worker may take it)."""
        self._send(_calls.release_lock(task_id, worker_details))

    def task_input(self, task_id: int, input_index: int) -> bytes:
        """An input file of a task."""
        return self._send(_calls.task_input(task_id, input_index)).content

    # --- transport -----------------------------------------------------------------------------

    def _send(self, call: _calls.Call, deadline: Deadline | None = None) -> httpx.Response:
        """Send ``call``, re-sending as the retry policy allows; 4xx/5xx answers raise."""
        deadline = deadline or Deadline(None)
        kwargs = call.httpx_kwargs(self._http.timeout)
        attempt = 0
        while True:
            try:
                response = self._http.request(call.method, call.path, **kwargs)
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
            time.sleep(delay)
            attempt += 1
