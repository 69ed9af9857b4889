"""What the client raises: one tree, built from the server's status code and ``{"detail"}``.

ClientError                any failure the SDK reports; ``.status_code`` (None: no answer), ``.detail``
 ├── InvalidInput          400 / 422: the server refused a value; the detail names it
 ├── Unauthorized          401: no or wrong credentials
 ├── Forbidden             403: authenticated, but not allowed (an admin-only route)
 ├── NotFound              404: no such task, flow, node or file (or not yours)
 ├── Conflict              409: the request clashes with the task's state
 ├── ServerError           5xx, still failing after the retries
 ├── ServiceUnavailable    the server could not be reached (after the retries)
 ├── InvalidResponse       an answer that is not what the API promises (not JSON, missing fields)
 ├── TaskFailed            the task ended with an error; ``.task_id``, ``.error``
 └── Timeout               waiting for a task took longer than allowed; ``.task_id``
"""

from __future__ import annotations

import httpx


class ClientError(Exception):
    """The Visionatrix server refused or failed the request."""

    def __init__(
        self, detail: str | None = None, status_code: int | None = None, *, request: str = ""
    ) -> None:
        self.detail = detail or (self.__doc__ or "").strip()
        self.status_code = status_code
        self.request = request  # "PUT /vapi/tasks/create/x", for the message
        super().__init__(_message(self.detail, status_code, request))


class InvalidInput(ClientError):
    """The server refused a request value."""


class Unauthorized(ClientError):
    """No or wrong credentials."""


class Forbidden(ClientError):
    """Not allowed for this user."""


class NotFound(ClientError):
    """Not found."""


class Conflict(ClientError):
    """The request conflicts with the current state."""


class ServerError(ClientError):
    """The server failed to answer the request."""


class ServiceUnavailable(ClientError):
    """The server could not be reached."""


class InvalidResponse(ClientError):
    """The server's answer does not follow the API."""


class TaskFailed(ClientError):
    """The task ended with an error."""

    def __init__(self, task_id: int, error: str) -> None:
        self.task_id = task_id
        self.error = error
        super().__init__(f"task {task_id} failed: {error}")


class Timeout(ClientError):
    """Waiting for the task took too long."""

    def __init__(self, task_id: int, timeout: float | None) -> None:
        self.task_id = task_id
        self.timeout = timeout
        super().__init__(f"task {task_id} did not finish within {seconds_text(timeout)} s")


def seconds_text(seconds: float | None) -> str:
    """Seconds for a message: whole ones from 10 on (a deadline's 199.9925 s reads "200")."""
    if seconds is None:
        return "unlimited"
    return f"{seconds:.0f}" if seconds >= 10 else f"{seconds:.2g}"


_BY_STATUS: dict[int, type[ClientError]] = {
    400: InvalidInput,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: InvalidInput,
}


def error_from_response(response: httpx.Response) -> ClientError:
    """The exception for a 4xx/5xx answer, carrying the server's ``detail``."""
    status = response.status_code
    kind = ServerError if status >= 500 else _BY_STATUS.get(status, ClientError)
    return kind(_detail(response), status, request=_request_line(response))


def _message(detail: str, status_code: int | None, request: str) -> str:
    context = " ".join(part for part in (request, str(status_code or "")) if part)
    return f"{detail} ({context})" if context else detail


def _request_line(response: httpx.Response) -> str:
    # A response built outside a client has no request; say what we can.
    try:
        request = response.request
    except RuntimeError:
        return ""
    return f"{request.method} {request.url.path}"


def _detail(response: httpx.Response) -> str:
    """FastAPI's ``{"detail": str | [{loc, msg}]}``, else the start of the body."""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    if isinstance(detail, str) and detail:
        return detail
    if isinstance(detail, list) and detail:
        return "; ".join(_validation_item(item) for item in detail)
    return response.text.strip()[:200] or response.reason_phrase or "no detail"


def _validation_item(item: object) -> str:
    if not isinstance(item, dict):
        return str(item)
    where = ".".join(str(part) for part in item.get("loc", []))
    return f"{where}: {item.get('msg', '')}" if where else str(item.get("msg", item))
