"""Every API request as a plain :class:`Call`, and the parsing of the answers.

Pure: no IO. The sync and async clients send the same calls, so the wire shape lives here once.
"""

from __future__ import annotations

import json
import mimetypes
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from visionatrix.client._multipart import Part, guess_extension
from visionatrix.client._types import ResultFile
from visionatrix.client.errors import InvalidResponse, ServiceUnavailable, error_from_response

WHOAMI = "/vapi/other/whoami"
LONG_POLL_MARGIN = 10.0  # read timeout beyond the server's long-poll time
# These failures happen before the request leaves this machine, so re-sending cannot act twice.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True)
class Call:
    """One HTTP request. ``idempotent`` calls may be re-sent after any network error or 5xx."""

    method: str
    path: str
    params: dict[str, str] | None = None
    json: Any = None
    parts: list[Part] | None = None
    idempotent: bool = True
    timeout: float | None = None  # None: the client's default
    headers: dict[str, str] | None = None

    def describe(self) -> str:
        return f"{self.method} {self.path}"

    def httpx_kwargs(self, default_timeout: httpx.Timeout) -> dict[str, Any]:
        timeout = default_timeout if self.timeout is None else httpx.Timeout(self.timeout)
        kwargs: dict[str, Any] = {"params": self.params, "timeout": timeout}
        if self.headers is not None:
            kwargs["headers"] = self.headers
        if self.json is not None:
            kwargs["json"] = self.json
        if self.parts is not None:
            kwargs["files"] = self.parts
        return kwargs


def whoami() -> Call:
    return Call("GET", WHOAMI)


def flows_installed() -> Call:
    return Call("GET", "/vapi/flows/installed")


def flows_available() -> Call:
    return Call("GET", "/vapi/flows/not-installed")


def create_task(flow: str, parts: list[Part]) -> Call:
    # Not idempotent: a re-sent create makes a second task.
    return Call("PUT", f"/vapi/tasks/create/{quote(flow, safe='')}", parts=parts, idempotent=False)


def progress(task_id: int) -> Call:
    return Call("GET", f"/vapi/tasks/progress/{int(task_id)}")


def tasks(name: str | None, group_scope: int) -> Call:
    params = {"group_scope": str(group_scope)} | ({"name": name} if name else {})
    return Call("GET", "/vapi/tasks/progress", params=params)


def result(task_id: int, node_id: int, batch_index: int) -> Call:
    params = {"task_id": str(task_id), "node_id": str(node_id), "batch_index": str(batch_index)}
    return Call("GET", "/vapi/tasks/results", params=params)


def delete_task(task_id: int) -> Call:
    return Call("DELETE", "/vapi/tasks/task", params={"task_id": str(task_id)})


def restart(task_id: int, force: bool) -> Call:
    params = {"task_id": str(task_id), "force": "true" if force else "false"}
    return Call("POST", "/vapi/tasks/restart", params=params, idempotent=False)


def set_priority(task_id: int, priority: int) -> Call:
    return Call("PUT", "/vapi/tasks/update", params={"task_id": str(task_id)}, json={"priority": priority})


def next_task(
    worker_details: dict[str, Any],
    tasks_names: list[str],
    last_task_name: str,
    wait: float,
    known_flows: list[str] | None = None,
    inline_inputs: int = 0,
    unavailable_flows: dict[str, str] | None = None,
) -> Call:
    body: dict[str, Any] = {
        "worker_details": worker_details,
        "tasks_names": tasks_names,
        "last_task_name": last_task_name,
    }
    if known_flows is not None:
        body["known_flows"] = known_flows
    if inline_inputs > 0:  # small inputs inside the answer: no download each
        body["inline_inputs"] = inline_inputs
    if unavailable_flows is not None:
        body["unavailable_flows"] = unavailable_flows
    if wait <= 0:
        return Call("POST", "/vapi/tasks/next", json=body, idempotent=False)
    # The server holds the request up to `wait` seconds, so the read timeout must outlast it.
    params = {"wait": f"{wait:g}"}
    timeout = wait + LONG_POLL_MARGIN
    return Call("POST", "/vapi/tasks/next", params=params, json=body, idempotent=False, timeout=timeout)


def report_progress(
    task_id: int, progress: float, execution_time: float, error: str, worker_details: dict[str, Any] | None
) -> Call:
    body = {
        "worker_details": worker_details or {},
        "task_id": task_id,
        "progress": progress,
        "execution_time": execution_time,
        "error": error,
    }
    return Call("PUT", "/vapi/tasks/progress", json=body)


def upload_results(
    task_id: int,
    files: list[tuple[str, bytes, str]],
    worker_details: dict[str, Any] | None = None,
    execution_time: float | None = None,
) -> Call:
    parts: list[Part] = [("files", (name, content, kind)) for name, content, kind in files]
    if worker_details is not None:  # names the worker, so a claim lost to another is refused
        parts.append(("worker_details", (None, json.dumps(worker_details), None)))
    if execution_time is not None:  # the run's time, so no progress report is needed before this
        parts.append(("execution_time", (None, f"{execution_time:.6f}", None)))
    return Call("PUT", "/vapi/tasks/results", params={"task_id": str(task_id)}, parts=parts)


def release_lock(task_id: int, worker_details: dict[str, Any] | None = None) -> Call:
    # a DELETE carries no body: the worker names itself in a header, as the server reads it
    headers = None if worker_details is None else {"x-worker-details": json.dumps(worker_details)}
    return Call("DELETE", "/vapi/tasks/lock", params={"task_id": str(task_id)}, headers=headers)


def task_input(task_id: int, input_index: int) -> Call:
    return Call(
        "GET", "/vapi/tasks/inputs", params={"task_id": str(task_id), "input_index": str(input_index)}
    )


# --- answers ---------------------------------------------------------------------------------


def checked(response: httpx.Response) -> httpx.Response:
    """The response, or the typed error of a 4xx/5xx answer."""
    if response.is_error:
        raise error_from_response(response)
    return response


def unreachable(base_url: str, call: Call, exc: httpx.TransportError) -> ServiceUnavailable:
    """The error for a request that got no answer, saying whether it may have been acted on."""
    reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if call.idempotent or isinstance(exc, NOT_SENT):
        return ServiceUnavailable(f"cannot reach {base_url} ({reason})", request=call.describe())
    # Deliberately not re-sent: the server may have acted on it (a task created, a task claimed).
    return ServiceUnavailable(
        f"lost the connection to {base_url} ({reason}); the request may have reached the server",
        request=call.describe(),
    )


def json_body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise InvalidResponse(f"expected JSON, got {response.text[:80]!r}", response.status_code) from exc


def json_object(response: httpx.Response) -> dict[str, Any]:
    body = json_body(response)
    if not isinstance(body, dict):
        raise InvalidResponse(f"expected a JSON object, got {type(body).__name__}", response.status_code)
    return body


def json_list(response: httpx.Response) -> list[Any]:
    body = json_body(response)
    if not isinstance(body, list):
        raise InvalidResponse(f"expected a JSON list, got {type(body).__name__}", response.status_code)
    return body


def created_ids(response: httpx.Response) -> list[int]:
    ids = json_object(response).get("tasks_ids")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, int) for i in ids):
        raise InvalidResponse(
            f"create answered without task ids: {response.text[:120]!r}", response.status_code
        )
    return ids


def result_file(response: httpx.Response, task_id: int, node_id: int, batch_index: int) -> ResultFile:
    kind = response.headers.get("content-type", "").split(";")[0].strip() or "application/octet-stream"
    filename = _disposition_name(response) or _default_name(
        task_id, node_id, batch_index, response.content, kind
    )
    return ResultFile(node_id, batch_index, response.content, kind, filename)


def _disposition_name(response: httpx.Response) -> str | None:
    match = re.search(r'filename="?([^";]+)"?', response.headers.get("content-disposition", ""))
    return match.group(1) if match else None


def _default_name(task_id: int, node_id: int, batch_index: int, content: bytes, kind: str) -> str:
    extension = guess_extension(content)
    if extension == ".bin" and kind != "application/octet-stream":
        extension = _extension_for(kind)
    return f"{task_id}_{node_id}_{batch_index}{extension}"


def _extension_for(kind: str) -> str:
    return mimetypes.guess_extension(kind) or ".bin"
