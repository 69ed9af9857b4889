"""Visionatrix flow JSON (ComfyUI API format + Visionatrix metadata) -> ``Flow``. Pure: no IO but
``load_flow_file``.

A graph is ``{node_id: {"class_type": str, "inputs": {...}, "_meta": {"title": str}}}``; an
input is a literal or a link ``[source_node_id, output_index]``. The metadata lives in the
``VixUiWorkflowMetadata`` node, the inputs in ``VixUi*`` and ``input;``-titled nodes (see
``input_nodes``), the outputs are the save nodes listed in ``OUTPUT_TYPES``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from visionatrix.errors import InvalidInput
from visionatrix.flows.input_nodes import read_input_params
from visionatrix.flows.model import Flow, FlowOutput

OUTPUT_TYPES: dict[str, str] = {
    "SaveImage": "image",
    "SaveAnimatedWEBP": "image-animated",
    "SaveAnimatedPNG": "image-animated",
    "VHS_VideoCombine": "video",
    "SaveWEBM": "video",
    "SaveVideo": "video",
    "SaveAudio": "audio",
    "SaveAudioMP3": "audio",
    "SaveAudioOpus": "audio",
    "SaveText|pysssss": "text",
    "SaveGLB": "3d-model",
}
METADATA_CLASS = "VixUiWorkflowMetadata"
SUBFLOWS_TITLE = "WF_SUBFLOWS"
# Metadata inputs that hold JSON text rather than a value.
_JSON_FIELDS = ("tags", "requires")
_METADATA_FIELDS = frozenset(Flow.model_fields) - {
    "sub_flows",
    "models",
    "input_params",
    "outputs",
    "node_classes",
}


def parse_flow(graph: Any) -> Flow:
    """Describe ``graph`` as a ``Flow``; ``InvalidInput`` names what is wrong with it."""
    check_graph(graph)
    fields = _metadata(graph)
    fields.update(
        sub_flows=_sub_flows(graph),
        input_params=read_input_params(graph),
        outputs=_outputs(graph),
        node_classes=sorted({node["class_type"] for node in graph.values()}),
    )
    try:
        return Flow.model_validate(fields)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidInput(f"flow {fields.get('name')!r}: bad metadata {where}: {first['msg']}") from e


def load_flow_file(path: str | PathLike[str]) -> tuple[dict[str, Any], Flow]:
    """Read a flow file: its graph and the parsed ``Flow``."""
    try:
        graph = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InvalidInput(f"flow file {str(path)!r} cannot be read as JSON: {e}") from e
    return graph, parse_flow(graph)


def check_graph(graph: Any) -> None:
    """Raise ``InvalidInput`` unless ``graph`` is a dict of well-formed nodes whose links resolve."""
    if not isinstance(graph, dict) or not graph:
        raise InvalidInput("a flow must be a non-empty JSON object of nodes {node_id: {class_type, inputs}}")
    for node_id, node in graph.items():
        _check_node(graph, node_id, node)


def _check_node(graph: Mapping[str, Any], node_id: str, node: Any) -> None:
    if not isinstance(node, dict):
        raise InvalidInput(f"node {node_id}: expected an object with class_type and inputs")
    class_type = node.get("class_type")
    if not isinstance(class_type, str) or not class_type:
        raise InvalidInput(f"node {node_id}: missing class_type")
    if not isinstance(node.get("inputs"), dict):
        raise InvalidInput(f"node {node_id} ({class_type}): 'inputs' must be an object")
    meta = node.get("_meta", {})
    if not isinstance(meta, dict) or not isinstance(meta.get("title", ""), str):
        raise InvalidInput(f"node {node_id} ({class_type}): '_meta' must be an object with a string title")
    for name, value in node["inputs"].items():
        if isinstance(value, list) and not _is_link_to_node(graph, value):
            raise InvalidInput(
                f"node {node_id} ({class_type}): input {name!r} = {value!r} is not a link"
                " [node_id, output_index] to a node of this flow"
            )


def _is_link_to_node(graph: Mapping[str, Any], value: list[Any]) -> bool:
    return (
        len(value) == 2
        and str(value[0]) in graph
        and isinstance(value[1], int)
        and not isinstance(value[1], bool)
    )


def _metadata(graph: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    found = [node_id for node_id, node in graph.items() if node["class_type"] == METADATA_CLASS]
    if not found:
        raise InvalidInput(f"the flow has no {METADATA_CLASS} node: it is not a Visionatrix flow")
    if len(found) > 1:
        raise InvalidInput(
            f"the flow has {len(found)} {METADATA_CLASS} nodes ({', '.join(found)}); expected one"
        )
    inputs = graph[found[0]]["inputs"]
    name = inputs.get("name")
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput(f"node {found[0]} ({METADATA_CLASS}): the flow has no name")
    fields = {k: v for k, v in inputs.items() if k in _METADATA_FIELDS}
    for key in _JSON_FIELDS:
        if isinstance(fields.get(key), str):
            fields[key] = _json_value(found[0], key, fields[key])
    return fields


def _json_value(node_id: str, key: str, text: str) -> Any:
    if not text.strip():
        return []
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise InvalidInput(f"node {node_id}: {key!r} is not valid JSON: {e}") from e


def _sub_flows(graph: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    for node_id, node in graph.items():
        if node.get("_meta", {}).get("title") != SUBFLOWS_TITLE:
            continue
        inputs = node["inputs"]
        text = inputs.get("value", inputs.get("text", "[]"))
        sub_flows = _json_value(node_id, SUBFLOWS_TITLE, text) if isinstance(text, str) else text
        if not isinstance(sub_flows, list) or not all(isinstance(s, dict) for s in sub_flows):
            raise InvalidInput(f"node {node_id} ({SUBFLOWS_TITLE}): expected a JSON list of objects")
        return sub_flows
    return []


def _outputs(graph: Mapping[str, Mapping[str, Any]]) -> list[FlowOutput]:
    outputs = []
    for node_id, node in graph.items():
        output_type = OUTPUT_TYPES.get(node["class_type"])
        if output_type is None:
            continue
        if not node_id.isdigit():
            raise InvalidInput(f"node {node_id!r} ({node['class_type']}): output node ids must be integers")
        outputs.append(FlowOutput(comfy_node_id=int(node_id), type=output_type))
    return sorted(outputs, key=lambda o: o.comfy_node_id)
