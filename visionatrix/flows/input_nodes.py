"""Read a flow's user inputs from its graph nodes.

Two kinds of node declare an input:

* ``VixUi*`` nodes (``VixUiPrompt``, ``VixUiList``...) carry the UI attributes as node inputs
  (``display_name``, ``optional``, ``order``, ``custom_id``...) beside the value field.
* Any supported node titled ``input;Display Name;flag;key=value...``, e.g. a ``LoadImage``.
  Flags (``optional``, ``advanced``, ``hidden``, ``translatable``, ``mask``) and ``key=value``
  pairs (``order``, ``custom_id``, ``source_input_name``) come in any order; like Visionatrix
  we strip and lower-case them, and ignore empty parts (titles may end with ``;``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from visionatrix.errors import InvalidInput
from visionatrix.flows.model import InputParam

# class_type -> (input type, the node input that holds the value)
VIX_UI_INPUTS: dict[str, tuple[str, str]] = {
    "VixUiPrompt": ("text", "text"),
    "VixUiList": ("list", "default_value"),
    "VixUiListLogic": ("list", "default_value"),
    "VixUiCheckbox": ("bool", "state"),
    "VixUiCheckboxLogic": ("bool", "state"),
    "VixUiRangeInt": ("range", "value"),
    "VixUiRangeFloat": ("range", "value"),
    "VixUiRangeScaleFloat": ("range_scale", "value"),
    "VixUiAspectRatioSelector": ("list", "aspect_ratio"),
}
TITLED_INPUTS: dict[str, tuple[str, str]] = {
    "LoadImage": ("image", "image"),
    "LoadImageMask": ("image-mask", "image"),
    "LoadVideo": ("video", "file"),
    "VHS_LoadVideo": ("video", "video"),
    "LoadAudio": ("audio", "audio"),
}
NOT_INPUTS = frozenset({"VixUiWorkflowMetadata"})
TITLE_PREFIX = "input;"

# The choices the VixUiAspectRatioSelector node offers (ComfyUI-Visionatrix).
ASPECT_RATIOS = (
    "1:1 (1024x1024)",
    "2:3 (832x1216)",
    "3:4 (896x1152)",
    "5:8 (768x1216)",
    "9:16 (768x1344)",
    "9:19 (704x1472)",
    "9:21 (640x1536)",
    "3:2 (1216x832)",
    "4:3 (1152x896)",
    "8:5 (1216x768)",
    "16:9 (1344x768)",
    "20:11 (1280x704)",
    "19:9 (1472x704)",
    "21:9 (1536x640)",
)
_UI_ATTRIBUTES = ("display_name", "optional", "advanced", "hidden", "order", "translatable")
_TITLE_FLAGS = frozenset({"optional", "advanced", "hidden", "translatable", "mask"})


def is_input_node(node: Mapping[str, Any]) -> bool:
    class_type = node["class_type"]
    if class_type.startswith("VixUi"):
        return class_type not in NOT_INPUTS
    return str(node.get("_meta", {}).get("title", "")).startswith(TITLE_PREFIX)


def read_input_params(graph: Mapping[str, Mapping[str, Any]]) -> list[InputParam]:
    """Every input the graph declares, sorted by ``order`` (stable for equal orders)."""
    params = [read_input_param(node_id, node) for node_id, node in graph.items() if is_input_node(node)]
    _check_unique_names(params)
    return sorted(params, key=lambda p: p.order)


def read_input_param(node_id: str, node: Mapping[str, Any]) -> InputParam:
    class_type = node["class_type"]
    if class_type in VIX_UI_INPUTS:
        fields = _vix_ui_fields(node_id, node)
    elif class_type in TITLED_INPUTS:
        fields = _titled_fields(node_id, node)
    else:
        raise InvalidInput(f"node {node_id} ({class_type}): this node class is not supported as a flow input")
    fields["name"] = fields.pop("custom_id", "") or f"in_param_{node_id}"
    try:
        return InputParam.model_validate(fields)
    except ValidationError as e:
        raise InvalidInput(f"node {node_id} ({class_type}): bad input declaration: {_first_error(e)}") from e


def _vix_ui_fields(node_id: str, node: Mapping[str, Any]) -> dict[str, Any]:
    class_type = node["class_type"]
    inputs = node["inputs"]
    input_type, field = VIX_UI_INPUTS[class_type]
    if field not in inputs:
        raise InvalidInput(f"node {node_id} ({class_type}): missing its value input {field!r}")
    fields: dict[str, Any] = {k: inputs[k] for k in _UI_ATTRIBUTES if k in inputs}
    fields.update(
        custom_id=inputs.get("custom_id", ""),
        type=input_type,
        default=inputs[field],
        comfy_node_id={node_id: ["inputs", field]},
        class_type=class_type,
    )
    fields.update(_type_details(node_id, node))
    return fields


def _type_details(node_id: str, node: Mapping[str, Any]) -> dict[str, Any]:
    """min/max/step of ranges, options of lists, typed defaults."""
    class_type = node["class_type"]
    inputs = node["inputs"]
    if class_type.startswith("VixUiRange"):
        number = int if class_type == "VixUiRangeInt" else float
        details = {k: _number(node_id, node, k, number) for k in ("min", "max", "step", "value")}
        details["default"] = details.pop("value")
        if inputs.get("source_input_name"):
            details["source_input_name"] = inputs["source_input_name"]
        return details
    if class_type in ("VixUiList", "VixUiListLogic"):
        return {"options": _list_options(node_id, node)}
    if class_type == "VixUiAspectRatioSelector":
        options = dict.fromkeys(ASPECT_RATIOS)
        options.setdefault(inputs["aspect_ratio"])  # a flow newer than this table still parses
        return {"options": {k: k for k in options}}
    return {}


def _number(node_id: str, node: Mapping[str, Any], key: str, number: type) -> int | float:
    value = node["inputs"].get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"node {node_id} ({node['class_type']}): {key!r} must be a number, got {value!r}")
    return number(value)


def _list_options(node_id: str, node: Mapping[str, Any]) -> dict[str, Any]:
    raw = node["inputs"].get("possible_values", "[]")
    try:
        values = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError as e:
        raise InvalidInput(f"node {node_id} ({node['class_type']}): possible_values is not JSON: {e}") from e
    if isinstance(values, list):
        return {str(v): v for v in values}
    if isinstance(values, dict):
        return {str(k): v for k, v in values.items()}
    raise InvalidInput(
        f"node {node_id} ({node['class_type']}): possible_values must be a JSON list or object"
    )


def _titled_fields(node_id: str, node: Mapping[str, Any]) -> dict[str, Any]:
    class_type = node["class_type"]
    input_type, field = TITLED_INPUTS[class_type]
    attributes = parse_title(node_id, str(node["_meta"]["title"]))
    if attributes.pop("mask", False) and input_type == "image":
        input_type = "image-mask"
    attributes.update(
        type=input_type,
        default=node["inputs"].get(field, ""),
        comfy_node_id={node_id: ["inputs", field]},
        class_type=class_type,
    )
    return attributes


def parse_title(node_id: str, title: str) -> dict[str, Any]:
    """``input;Display Name;optional;order=3;custom_id=x`` -> the attributes it sets."""
    parts = [p.strip() for p in title.split(";")]
    attributes: dict[str, Any] = {"display_name": parts[1] if len(parts) > 1 else ""}
    for part in (p.lower() for p in parts[2:] if p.strip()):
        key, sep, value = part.partition("=")
        if sep:
            attributes[key.strip()] = _title_value(node_id, key.strip(), value.strip())
        elif part in _TITLE_FLAGS:
            attributes[part] = True
    return {k: v for k, v in attributes.items() if k in _TITLE_KEYS}


_TITLE_KEYS = frozenset({"display_name", "order", "custom_id", "source_input_name"} | _TITLE_FLAGS)


def _title_value(node_id: str, key: str, value: str) -> Any:
    if key != "order":
        return value
    try:
        return int(value)
    except ValueError:
        raise InvalidInput(f"node {node_id}: title has order={value!r}, expected an integer") from None


def _check_unique_names(params: list[InputParam]) -> None:
    seen: dict[str, str] = {}
    for param in params:
        node_id = next(iter(param.comfy_node_id))
        if param.name in seen:
            raise InvalidInput(
                f"input name {param.name!r} is declared twice (nodes {seen[param.name]} and {node_id})"
            )
        seen[param.name] = node_id


def _first_error(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return f"{where}: {first['msg']}"
