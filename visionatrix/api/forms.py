"""multipart/form-data of a create-task request → ``TaskRequest``, with Visionatrix's quirks:
booleans as 0/1, file inputs given as JSON references to other tasks' files."""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from typing import Any

from starlette.datastructures import FormData, UploadFile

from visionatrix.errors import InvalidInput
from visionatrix.tasks.requests import FileRef, TaskRequest, UploadedFile
from visionatrix.tasks.webhook_targets import checked_headers

RESERVED = {
    "count",
    "seed",
    "priority",
    "group_scope",
    "webhook_url",
    "webhook_headers",
    "translate",
    "child_task",
}
MAX_COUNT = 100
# empty (no webhook, as Visionatrix clients send it) or an http(s) URL; the OpenAPI schemas
# publish this same pattern, so what the schema allows is exactly what is accepted
WEBHOOK_URL_PATTERN = r"^(?:[Hh][Tt][Tt][Pp][Ss]?://\S+)?$"
# a yes/no form field: Visionatrix clients send 0/1, form encoders true/false; both are taken
FLAG_SCHEMA: dict[str, Any] = {"anyOf": [{"type": "boolean"}, {"type": "integer", "enum": [0, 1]}]}
# the integer reserved fields: (default, lowest, highest); the per-flow OpenAPI schema reads them too
INT_FIELDS = {
    "count": (1, 1, MAX_COUNT),
    "priority": (0, 0, 15),
    "group_scope": (1, 1, 255),
    "seed": (0, 0, 2**63 - 1 - MAX_COUNT),
}


async def parse_task_form(form: FormData, file_params: Collection[str]) -> TaskRequest:
    req = TaskRequest()
    reserved: dict[str, str] = {}
    for key, value in form.multi_items():
        if isinstance(value, UploadFile):
            if key in file_params:
                req.files[key] = uploaded(value, key)
        elif key in RESERVED:
            reserved[key] = value
        elif key in file_params:
            req.refs[key] = _file_ref(key, value)
        else:
            req.values[key] = value
    _apply_reserved(req, reserved)
    return req


def uploaded(part: UploadFile, name: str = "") -> UploadedFile:
    """A file part as the services take it: its spooled temporary file, not its bytes."""
    part.file.seek(0)
    return UploadedFile(part.filename or name, part.file, part.size or 0, part.content_type or "")


def _apply_reserved(req: TaskRequest, fields: dict[str, str]) -> None:
    req.count = _int(fields, "count", *INT_FIELDS["count"])
    req.priority = _int(fields, "priority", *INT_FIELDS["priority"])
    req.group_scope = _int(fields, "group_scope", *INT_FIELDS["group_scope"])
    if fields.get("seed", "").strip():
        req.seed = _int(fields, "seed", *INT_FIELDS["seed"])
    req.translate = _flag(fields, "translate")
    req.child_task = _flag(fields, "child_task")
    url = fields.get("webhook_url", "")
    if not re.fullmatch(WEBHOOK_URL_PATTERN, url):
        raise InvalidInput("webhook_url must be empty or an http:// or https:// URL without spaces")
    if url:
        req.webhook_url = url  # where it may point is the task service's to judge
    if fields.get("webhook_headers", "").strip():
        req.webhook_headers = _headers(fields["webhook_headers"])


def _int(fields: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = fields.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(f"'{name}' must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise InvalidInput(f"'{name}' must be between {low} and {high}, got {value}")
    return value


def _flag(fields: dict[str, str], name: str) -> bool:
    raw = fields.get(name, "0").strip().lower()
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off", ""):
        return False
    raise InvalidInput(f"'{name}' must be 0 or 1, got {raw!r}")


def _headers(raw: str) -> dict[str, Any]:
    try:
        headers = json.loads(raw)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise InvalidInput(f"'webhook_headers' is not valid JSON: {getattr(exc, 'msg', exc)}") from None
    return checked_headers(headers)


def _file_ref(param: str, raw: str) -> FileRef:
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, RecursionError):
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("task_id"), int | str):
        raise InvalidInput(
            f'input \'{param}\' must be a file, or JSON {{"task_id": X, "node_id": N}} / '
            f'{{"task_id": X, "input_index": i}}'
        )
    try:
        task_id = int(data["task_id"])
        node_id = int(data["node_id"]) if data.get("node_id") is not None else None
        index = int(data["input_index"]) if data.get("input_index") is not None else None
    except (TypeError, ValueError):
        raise InvalidInput(f"input '{param}': task_id, node_id and input_index must be integers") from None
    if node_id is None and index is None:
        index = 0
    return FileRef(task_id=task_id, node_id=node_id, input_index=index)


_FIELDS: dict[str, Any] = {
    "count": {"type": "integer", "minimum": 1, "maximum": MAX_COUNT, "default": 1},
    "seed": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1 - MAX_COUNT},
    "priority": {"type": "integer", "minimum": 0, "maximum": 15, "default": 0},
    "group_scope": {"type": "integer", "minimum": 1, "maximum": 255, "default": 1},
    "webhook_url": {
        "type": "string",
        "pattern": WEBHOOK_URL_PATTERN,
        "description": "POSTs go to <url>/task-progress",
    },
    "webhook_headers": {"type": "string", "description": "a JSON object of header names to values"},
    "translate": {**FLAG_SCHEMA, "default": 0},
    "child_task": {**FLAG_SCHEMA, "default": 0},
}
_FLOW_INPUT = {
    "description": "a flow input: text as a string, a file as a file part, or a JSON reference "
    '{"task_id": X, "node_id": N} / {"task_id": X, "input_index": i}',
}


def multipart_body(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    """The ``openapi_extra`` of a route that reads its multipart form itself (within upload limits)."""
    schema = {"type": "object", "required": required, "properties": properties}
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}}


# the create routes read their form themselves (within upload limits); this describes it
TASK_FORM: dict[str, Any] = {
    "requestBody": {
        "required": False,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": _FIELDS,
                    "additionalProperties": {
                        "anyOf": [{"type": "string"}, {"type": "string", "format": "binary"}]
                    },
                    **_FLOW_INPUT,
                }
            },
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "properties": _FIELDS,
                    "additionalProperties": {"type": "string"},
                }
            },
        },
    }
}
