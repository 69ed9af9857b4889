"""Put a task's validated values into a copy of its flow's graph, ready to run.

* A text-like input's value goes to the field its ``InputParam.comfy_node_id`` names
  (``VixUiPrompt.text``, ``VixUiList*.default_value``, ``VixUiCheckbox*.state``,
  ``VixUiRange*.value``, ``VixUiAspectRatioSelector.aspect_ratio``). A list input keeps its
  *label*: the VixUi list nodes map a label to its value themselves when ``possible_values``
  is a JSON object, so the graph stays what the flow author saved, with another choice.
* A file input's loader node (``LoadImage``...) gets the stored file name.
* ``seed``: every literal integer ``seed`` / ``noise_seed`` node input (KSampler, SamplerCustom,
  RandomNoise, KSamplerAdvanced, DetailerForEach, LLM nodes...) gets it, unless the flow
  declares its own ``seed`` input. A linked seed is left alone: another node computes it.
* An optional file input that was not given: its loader node is cut out of the graph, as
  Visionatrix does. Every node reading the cut node loses that input; a node for which that
  input is *required* is cut as well, recursively. Which inputs are optional is a fact about
  node classes, so the caller may pass ``is_optional(class_type, input_name)`` (e.g. from the
  engine's registry); the default knows the ``optional_*`` naming convention and the optional
  inputs of the node classes the Visionatrix flows feed optional images into. A cut that would
  remove an output node is refused: the task could never produce that output.
  As in Visionatrix, a node cut for a lost input that passes its one remaining input through
  (``BYPASS_WHEN_CUT``: an ImageBatch left with one image) is bridged, not followed: its
  readers take that input instead, so two of three optional images still arrive.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

from visionatrix.errors import InvalidInput
from visionatrix.flows.model import Flow, InputParam

IsOptional = Callable[[str, str], bool]

# Inputs that node classes declare optional (ComfyUI INPUT_TYPES "optional"), for the classes
# that sit right after optional image inputs in the Visionatrix flows, and the lazy branch
# inputs of the VixUi logic nodes.
KNOWN_OPTIONAL_INPUTS: dict[str, frozenset[str]] = {
    "ApplyInstantID": frozenset({"image_kps", "mask"}),
    "Hunyuan3Dv2ConditioningMultiView": frozenset({"front", "left", "right", "back"}),
    "ImageBatchMultiple+": frozenset({"image_2", "image_3", "image_4", "image_5"}),
    "OllamaGenerateV2": frozenset({"images"}),
    "Ask_Gemini": frozenset({"image_1"}),
    "VixUiCheckboxLogic": frozenset({"input_off_state", "input_on_state"}),
    "VixUiListLogic": frozenset(
        {"input_first", "input_second", "input_third", "input_fourth", "input_fifth", "input_sixth"}
    ),
}
SEED_INPUTS = ("seed", "noise_seed")
# node classes whose output has the type of their linked inputs (ComfyUI ImageBatch: IMAGE in and out)
BYPASS_WHEN_CUT = frozenset({"ImageBatch"})


def default_is_optional(class_type: str, input_name: str) -> bool:
    """Whether ``class_type`` runs without ``input_name`` (conservative: unknown means required)."""
    return input_name.startswith("optional_") or input_name in KNOWN_OPTIONAL_INPUTS.get(class_type, ())


def patch_graph(
    graph: Mapping[str, Any],
    flow: Flow,
    values: Mapping[str, Any],
    files: Mapping[str, str],
    seed: int | None,
    *,
    is_optional: IsOptional = default_is_optional,
) -> dict[str, Any]:
    """A deep copy of ``graph`` carrying ``values`` (from ``validate_inputs``), the stored input
    ``files`` (param name -> file name) and ``seed``."""
    patched: dict[str, Any] = copy.deepcopy(dict(graph))
    missing_files: list[InputParam] = []
    for param in flow.input_params:
        if param.is_file:
            if param.name in files:
                _set_value(patched, param, files[param.name])
            elif param.optional:
                missing_files.append(param)
            else:
                raise InvalidInput(f"missing required input {param.name!r} ({param.type})")
        elif param.name in values:
            _set_value(patched, param, values[param.name])
    if seed is not None and flow.is_seed_supported and flow.input_param("seed") is None:
        set_seed(patched, seed)
    output_ids = {str(o.comfy_node_id) for o in flow.outputs}
    for param in missing_files:
        _cut_input(patched, param, output_ids, is_optional)
    return patched


def set_seed(graph: Mapping[str, Any], seed: int) -> None:
    """Give every literal integer seed input of ``graph`` the value ``seed``, in place."""
    for node in graph.values():
        inputs = node["inputs"]
        for name in SEED_INPUTS:
            if isinstance(inputs.get(name), int) and not isinstance(inputs[name], bool):
                inputs[name] = seed


def _set_value(graph: Mapping[str, Any], param: InputParam, value: Any) -> None:
    for node_id, path in param.comfy_node_id.items():
        target = graph.get(node_id)
        if target is None:
            raise InvalidInput(f"input {param.name!r}: its node {node_id} is not in the flow graph")
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value


def _cut_input(
    graph: dict[str, Any], param: InputParam, output_ids: set[str], is_optional: IsOptional
) -> None:
    for node_id in param.comfy_node_id:
        outputs = sorted(output_ids & set(cut_node(graph, node_id, is_optional)), key=int)
        if outputs:
            raise InvalidInput(
                f"optional input {param.name!r} cannot be left out: output node(s) "
                f"{', '.join(outputs)} need it"
            )


def cut_node(
    graph: dict[str, Any], node_id: str, is_optional: IsOptional = default_is_optional
) -> dict[str, str]:
    """Remove ``node_id`` and the nodes that cannot run without it, in place.

    Returns the removed nodes as node id -> class_type.
    """
    removed: dict[str, str] = {}
    pending = [node_id]
    while pending:
        current = pending.pop()
        node = graph.pop(current, None)
        if node is None:
            continue
        removed[current] = node["class_type"]
        bridge = _bridge(node)
        for consumer_id, consumer in graph.items():
            for name in _inputs_linked_to(consumer, current):
                if bridge is not None:
                    consumer["inputs"][name] = list(bridge)
                    continue
                del consumer["inputs"][name]
                if not is_optional(consumer["class_type"], name):
                    pending.append(consumer_id)
    return removed


def _bridge(node: Mapping[str, Any]) -> list[Any] | None:
    """The one link a cut pass-through node leaves behind, which its readers take instead."""
    if node["class_type"] not in BYPASS_WHEN_CUT:
        return None
    links = [v for v in node["inputs"].values() if isinstance(v, list) and len(v) == 2]
    return links[0] if len(links) == 1 else None


def _inputs_linked_to(node: Mapping[str, Any], source_id: str) -> list[str]:
    return [
        name
        for name, value in node["inputs"].items()
        if isinstance(value, list) and len(value) == 2 and str(value[0]) == source_id
    ]
