"""The per-flow API: an OpenAPI path for each installed flow's create route, built from its inputs.

``PUT /vapi/tasks/create/{flow_name}`` serves every flow; these paths describe what it accepts
for one flow, field by field, exactly as ``api.forms`` and ``flows.inputs`` check it: a schema
a client generator or a property-based tester can trust.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from visionatrix.api.forms import FLAG_SCHEMA, INT_FIELDS, MAX_COUNT, RESERVED, WEBHOOK_URL_PATTERN
from visionatrix.flows.model import Flow, InputParam

TAG = "flows API"
_UNSAFE = re.compile(r"[^A-Za-z0-9_]")
_FILE_REF = (
    'Instead of a file: JSON {"task_id": X, "node_id": N} (an output of task X) or '
    '{"task_id": X, "input_index": i} (an input of task X).'
)
_ERROR = {
    "type": "object",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
}
_CREATED = {
    "type": "object",
    "properties": {
        "tasks_ids": {"type": "array", "items": {"type": "integer"}},
        "outputs": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "comfy_node_id": {"type": "integer"},
                    "type": {"type": "string"},
                    "file_size": {"type": "integer"},
                    "batch_size": {"type": "integer"},
                },
            },
        },
    },
    "required": ["tasks_ids", "outputs"],
}


def with_flow_paths(base: dict[str, Any], flows: list[dict[str, Any]]) -> dict[str, Any]:
    """A copy of the app's schema with one create path per installed flow."""
    schema = copy.deepcopy(base)
    paths = schema.setdefault("paths", {})
    for raw in flows:
        flow = Flow.model_validate(raw)
        paths[f"/vapi/tasks/create/{flow.name}"] = {"put": create_operation(flow)}
    if flows:
        schema.setdefault("tags", []).append(
            {"name": TAG, "description": "One create route per installed flow, with its own fields."}
        )
    return schema


def create_operation(flow: Flow) -> dict[str, Any]:
    params = [p for p in sorted(flow.input_params, key=lambda p: p.order) if p.name not in RESERVED]
    properties = {p.name: field_schema(p) for p in params}
    properties.update(reserved_fields(flow))
    body: dict[str, Any] = {"type": "object", "properties": properties}
    required = [p.name for p in params if not p.optional]
    if required:
        body["required"] = required
    return {
        "tags": [TAG],
        "summary": f"Create a {flow.display_name or flow.name} task",
        "description": _describe_flow(flow),
        "operationId": f"create_task_{_UNSAFE.sub('_', flow.name)}",
        "requestBody": {"required": bool(required), "content": {"multipart/form-data": {"schema": body}}},
        "responses": {
            "200": {
                "description": "The tasks were queued.",
                "content": {"application/json": {"schema": _CREATED}},
            },
            "400": {"description": "An input is missing or invalid; `detail` names it.", **_json(_ERROR)},
            "401": {"description": "Credentials are missing or wrong (SERVER mode).", **_json(_ERROR)},
            "404": {"description": "The flow is not installed.", **_json(_ERROR)},
            **(_llm_responses() if flow.is_translations_supported or flow.is_surprise_me_supported else {}),
        },
    }


def _llm_responses() -> dict[str, Any]:
    """Translation and Surprise Me ask an LLM provider before anything is queued."""
    return {
        "412": {"description": "`translate`/`surprise_me`: no provider is set up.", **_json(_ERROR)},
        "502": {"description": "The LLM provider refused the request.", **_json(_ERROR)},
        "504": {"description": "The LLM provider did not answer in time.", **_json(_ERROR)},
    }


def field_schema(param: InputParam) -> dict[str, Any]:
    """One flow input as a multipart field: type, limits, choices and default as they are checked."""
    schema: dict[str, Any] = {"title": param.display_name or param.name}
    notes = [f"Input type `{param.type}`."]
    if param.is_file:
        schema.update(type="string", format="binary")
        notes.append(_FILE_REF)
    elif param.type == "list":
        schema.update(type="string", enum=list(param.options or {}))
    elif param.type == "bool":
        schema.update(copy.deepcopy(FLAG_SCHEMA))
    elif param.type in ("range", "range_scale"):
        # as flows.inputs checks it: whole numbers when the default is one
        schema["type"] = "integer" if isinstance(param.default, int) else "number"
        schema.update({k: v for k, v in (("minimum", param.min), ("maximum", param.max)) if v is not None})
        if param.step is not None:
            notes.append(f"Step {param.step}.")
    elif param.type == "number":
        schema["type"] = "number"
    else:
        schema["type"] = "string"
    if param.is_file or param.default is None:
        pass
    elif param.optional:
        schema["default"] = param.default  # what the server fills in when the field is absent
    elif param.default != "":
        schema["example"] = param.default
    if param.translatable:
        notes.append("Translated to English first when `translate` is set.")
    if param.advanced:
        notes.append("Advanced.")
    if param.hidden:
        notes.append("Hidden in the web UI.")
    schema["description"] = " ".join(notes)
    return schema


def reserved_fields(flow: Flow) -> dict[str, dict[str, Any]]:
    """The task fields every create request may carry (``api.forms``)."""
    fields = {
        "count": _int_field(
            "count", f"How many tasks to create (1..{MAX_COUNT}); with `seed`, task i gets seed + i."
        ),
        "seed": _int_field(
            "seed",
            "The seed of the first task; absent: a random seed per task."
            + ("" if flow.is_seed_supported else " This flow does not use seeds."),
        ),
        "priority": _int_field("priority", "Higher runs first."),
        "group_scope": _int_field("group_scope", "The user's task group (UI tabs)."),
        "webhook_url": {
            "type": "string",
            "pattern": WEBHOOK_URL_PATTERN,
            "description": "The server POSTs progress and the result to <webhook_url>/task-progress.",
        },
        "webhook_headers": {
            "type": "string",
            "description": "A JSON object of header names to values, sent with every webhook call.",
        },
        "translate": {
            **copy.deepcopy(FLAG_SCHEMA),
            "default": False,
            "description": "Translate non-English prompts first"
            + (
                " (when a translations_provider is set)."
                if flow.is_translations_supported
                else " (this flow does not support it: ignored)."
            ),
        },
        "child_task": {
            **copy.deepcopy(FLAG_SCHEMA),
            "default": False,
            "description": "The task is a child of the task whose output a file input refers to.",
        },
    }
    del fields["seed"]["default"]  # absent means random, which no default value can say
    if flow.is_surprise_me_supported:
        fields["surprise_me"] = {
            "type": "integer",
            "enum": [0, 1],
            "default": 0,
            "description": "1: the llm_provider writes a random prompt per task, on the theme of `prompt`.",
        }
    return fields


def _int_field(name: str, description: str) -> dict[str, Any]:
    default, low, high = INT_FIELDS[name]
    return {
        "type": "integer",
        "minimum": low,
        "maximum": high,
        "default": default,
        "description": description,
    }


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _describe_flow(flow: Flow) -> str:
    outputs = ", ".join(f"node {o.comfy_node_id} ({o.type})" for o in flow.outputs) or "none"
    follow = (
        f"Outputs: {outputs}. Follow a task with `GET /vapi/tasks/progress/{{task_id}}` or "
        "`GET /vapi/tasks/events?task_id=`; download its results with `GET /vapi/tasks/results`."
    )
    return f"{flow.description}\n\n{follow}".strip()
