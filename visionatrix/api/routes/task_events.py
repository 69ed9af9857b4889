"""GET /vapi/tasks/events: the caller's task changes as Server-Sent Events.

The route authenticates with a session of its own that it closes before streaming: an open
stream holds no database connection while it waits.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from visionatrix.api.auth import current_user
from visionatrix.api.deps import ServicesDep
from visionatrix.api.services import Services
from visionatrix.errors import InvalidInput
from visionatrix.schemas import UserInfo
from visionatrix.tasks.events import Heartbeat, StreamFilter, StreamItem, TaskChanged, TaskDeleted

router = APIRouter(prefix="/vapi/tasks", tags=["tasks"])

MAX_EVENT_ID = 2**63 - 1
RETRY_MS = 2000  # how soon a browser reconnects after the stream drops

_DESCRIPTION = """\
`text/event-stream` of the caller's own tasks (optionally one task, or one flow's).

- `event: task` — `data` is the task as `GET /vapi/tasks/progress/{task_id}` answers it, sent on
  every change (created, claimed, progress, completed, failed, restarted, priority).
- `event: deleted` — `data` is `{"task_id", "name"}`: the task was deleted or cancelled.
- `event: reset` — changes since the given `Last-Event-ID` are no longer kept: reload the list.
- a comment line (`: heartbeat`) every 15 s while nothing changes.

Without `Last-Event-ID` the stream starts with the current state of the matching unfinished
tasks (with `task_id`: that task, whatever its state). Each event carries an `id`; a client
that reconnects with `Last-Event-ID` (browsers do it by themselves) gets every change since.
"""


# Before OpenAPI 3.2's `itemSchema`, an event stream's `schema` describes one event as a client
# parses it (comment-only frames such as the heartbeat are no events).
_EVENT_SCHEMA = {
    "type": "object",
    "required": ["event", "data", "id"],
    "properties": {
        "event": {"type": "string", "enum": ["task", "deleted", "reset"]},
        "id": {"type": "string", "pattern": "^[0-9]+$"},
        "retry": {"type": "integer"},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": {"type": "object"},
        },
    },
}


async def _user(request: Request, services: Services) -> UserInfo:
    async with services.sessions() as session:
        return await current_user(request, session, services.verifier, services.config.auth_required)


def _event_id_header_schema(schema: dict[str, Any]) -> None:
    # a header is absent or a string: "optional" must not read as "may be null"
    schema.pop("anyOf", None)
    schema.update(type="string", pattern="^[0-9]+$")


def _resume_id(header: str | None, query: int | None) -> int | None:
    if header is None:
        return query
    # as the schema publishes it: digits only (EventSource sends the id it was given, never blank)
    if not re.fullmatch(r"[0-9]+", header):
        raise InvalidInput(f"Last-Event-ID must be an event id (digits only), got {header!r}")
    return min(int(header), MAX_EVENT_ID)  # past every event there is: nothing to replay


def frame(item: StreamItem) -> str:
    """One Server-Sent Events frame."""
    if isinstance(item, Heartbeat):
        return f"id: {item.cursor}\n: heartbeat\n\n"
    if isinstance(item, TaskChanged):
        kind, data = "task", json.dumps(item.task, separators=(",", ":"))
    elif isinstance(item, TaskDeleted):
        kind, data = "deleted", json.dumps({"task_id": item.task_id, "name": item.name})
    else:
        kind, data = "reset", "{}"
    return f"id: {item.cursor}\nevent: {kind}\ndata: {data}\n\n"


class EventStreamResponse(StreamingResponse):
    """Ends the stream the moment the client goes away, not at the next write: servers speaking
    ASGI 2.4 leave that to the write, and a quiet stream writes only every 15 s."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with anyio.create_task_group() as group:

            async def stop_when_gone() -> None:
                await self.listen_for_disconnect(receive)
                group.cancel_scope.cancel()

            group.start_soon(stop_when_gone)
            with contextlib.suppress(OSError):
                await self.stream_response(send)
            group.cancel_scope.cancel()


@router.get(
    "/events",
    description=_DESCRIPTION,
    response_class=EventStreamResponse,
    responses={200: {"content": {"text/event-stream": {"schema": _EVENT_SCHEMA}}}},
)
async def events(
    request: Request,
    services: ServicesDep,
    task_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    name: Annotated[str | None, Query(max_length=256)] = None,
    last_event_id: Annotated[
        int | None, Query(ge=0, le=MAX_EVENT_ID, description="For clients that cannot set the header.")
    ] = None,
    last_event_id_header: Annotated[
        str | None, Header(alias="Last-Event-ID", json_schema_extra=_event_id_header_schema)
    ] = None,
) -> EventStreamResponse:
    user = await _user(request, services)
    after = _resume_id(last_event_id_header, last_event_id)
    if task_id is not None:
        async with services.sessions() as session:
            await services.tasks.owned(session, user, task_id)  # 404 for another user's task
    where = StreamFilter(user.user_id, task_id=task_id, name=name or None)
    stream = services.events.stream(where, after, stopping=lambda: services.queue.stopping)
    return EventStreamResponse(
        _frames(stream),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _frames(stream: AsyncIterator[StreamItem]) -> AsyncIterator[str]:
    yield f"retry: {RETRY_MS}\n\n"
    async for item in stream:
        yield frame(item)
