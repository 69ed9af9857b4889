"""Following one task over ``GET /vapi/tasks/events`` (Server-Sent Events). Pure: no IO.

The sync and async clients read the stream's lines; :class:`TaskWatch` turns them into task
states, remembers the id to resume from after a dropped connection, and says when the server
has no such stream (an older server: the client then polls).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx

from visionatrix.client import _outcome
from visionatrix.client.errors import InvalidResponse, NotFound

EVENTS = "/vapi/tasks/events"
# the server sends a heartbeat every 15 s; silence for this long means the connection is dead
READ_TIMEOUT = 45.0
MAX_RECONNECTS = 5  # in a row, without an event in between; then the client falls back to polling


@dataclass(frozen=True)
class ServerEvent:
    event: str
    data: str


@dataclass
class EventParser:
    """The ``text/event-stream`` format, line by line (WHATWG HTML, "server-sent events")."""

    last_id: str | None = None
    _event: str = ""
    _data: list[str] = field(default_factory=list)

    def feed(self, line: str) -> ServerEvent | None:
        """One line without its end; returns an event when a blank line completes one."""
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self.last_id = value
        return None

    def _dispatch(self) -> ServerEvent | None:
        event, data = self._event or "message", self._data
        self._event, self._data = "", []
        return ServerEvent(event, "\n".join(data)) if data else None


class TaskWatch:
    """The state of one ``wait()`` that follows its task over the event stream."""

    def __init__(self, task_id: int) -> None:
        self.task_id = task_id
        self.parser = EventParser()
        self.failures = 0

    def request(self) -> dict[str, Any]:
        headers = {"Accept": "text/event-stream"}
        if self.parser.last_id is not None:
            headers["Last-Event-ID"] = self.parser.last_id
        return {"params": {"task_id": str(self.task_id)}, "headers": headers}

    @staticmethod
    def timeout(remaining: float | None) -> httpx.Timeout:
        read = READ_TIMEOUT if remaining is None else max(0.1, min(READ_TIMEOUT, remaining))
        return httpx.Timeout(10.0, read=read)

    @staticmethod
    def unsupported(response: httpx.Response) -> bool:
        """Whether this answer is no event stream: polling must do (and tells the error, if any)."""
        return response.status_code != 200 or not response.headers.get("content-type", "").startswith(
            "text/event-stream"
        )

    @staticmethod
    def route_missing(response: httpx.Response) -> bool:
        """An older server without the route (not a missing task): no use trying it again."""
        if response.status_code == 405:
            return True
        try:
            return response.status_code == 404 and response.json().get("detail") == "Not Found"
        except ValueError:
            return response.status_code == 404

    def line(self, line: str) -> dict[str, Any] | None:
        """A task state when ``line`` completes one; raises when the task is gone or failed."""
        event = self.parser.feed(line)
        if event is None:
            return None
        if event.event == "deleted":
            raise NotFound(f"task {self.task_id} was deleted (cancelled)", status_code=404)
        if event.event != "task":
            return None
        try:
            task = json.loads(event.data)
        except json.JSONDecodeError as exc:
            raise InvalidResponse(f"task {self.task_id}: an event is not JSON: {event.data[:200]!r}") from exc
        if not isinstance(task, dict) or task.get("task_id") != self.task_id:
            return None
        self.failures = 0
        return task

    def finished(self, task: dict[str, Any]) -> bool:
        return _outcome.is_finished(self.task_id, task)

    def dropped(self) -> bool:
        """The connection broke; True while reconnecting is still worth it."""
        self.failures += 1
        return self.failures <= MAX_RECONNECTS

    def backoff(self) -> float:
        return min(5.0, 0.2 * 2 ** (self.failures - 1))
