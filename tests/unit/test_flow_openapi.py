"""Each input type as a multipart field of the per-flow OpenAPI schema, as flows.inputs checks it."""

from __future__ import annotations

from typing import Any

import pytest

from visionatrix.api.flow_openapi import create_operation, field_schema, with_flow_paths
from visionatrix.flows.inputs import coerce_value
from visionatrix.flows.model import Flow, InputParam


def _param(**values: Any) -> InputParam:
    return InputParam(
        **{
            "name": "x",
            "display_name": "X",
            "comfy_node_id": {"1": ["inputs", "x"]},
            "class_type": "N",
            **values,
        }
    )


def _plain(schema: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k != "description"}


@pytest.mark.parametrize(
    ("param", "expected"),
    [
        (
            dict(type="bool", optional=True, default=False),
            {"anyOf": [{"type": "boolean"}, {"type": "integer", "enum": [0, 1]}], "default": False},
        ),
        (
            dict(type="list", optional=True, default="b", options={"a": "a", "b": "b"}),
            {"type": "string", "enum": ["a", "b"], "default": "b"},
        ),
        (
            dict(type="range", optional=True, default=45.0, min=5.0, max=180.0, step=1.0),
            {"type": "number", "minimum": 5.0, "maximum": 180.0, "default": 45.0},
        ),
        (
            dict(type="range_scale", default=2, min=1, max=4, step=1),
            {"type": "integer", "minimum": 1, "maximum": 4, "example": 2},
        ),
        (dict(type="number", optional=True, default=3), {"type": "number", "default": 3}),
        (dict(type="image-mask", default=""), {"type": "string", "format": "binary"}),
        (dict(type="text", default=""), {"type": "string"}),
    ],
)
def test_each_input_type(param: dict[str, Any], expected: dict[str, Any]) -> None:
    assert _plain(field_schema(_param(**param))) == {"title": "X", **expected}


def test_the_range_type_follows_the_default_as_the_server_does() -> None:
    whole = _param(type="range", default=2, min=1, max=4)
    assert field_schema(whole)["type"] == "integer"
    assert coerce_value(whole, "3") == 3
    with pytest.raises(Exception, match="whole number"):
        coerce_value(whole, "2.5")


def test_a_flow_input_named_like_a_task_field_is_not_a_second_field() -> None:
    flow = Flow(name="f", input_params=[_param(name="seed", type="text"), _param(name="text", type="text")])
    body = create_operation(flow)["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert list(body["properties"])[:2] == ["text", "count"]
    assert body["properties"]["seed"]["type"] == "integer"


def test_the_app_schema_is_not_changed_in_place() -> None:
    base: dict[str, Any] = {"paths": {"/a": {}}}
    merged = with_flow_paths(base, [Flow(name="f").model_dump()])
    assert base == {"paths": {"/a": {}}}
    assert set(merged["paths"]) == {"/a", "/vapi/tasks/create/f"}
    assert merged["tags"][0]["name"] == "flows API"
    assert with_flow_paths(base, []) == base
