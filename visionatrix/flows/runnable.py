"""Can this server run a flow? Every reason it cannot, known before anything is installed or queued.

A flow runs here only when
  * the engine implements every node class of its graph,
  * every sampler and scheduler name its sampling nodes use is one the engine implements
    (``engine.sampling_names``), and
  * every model file a loader node reads (``engine.model_inputs``) is one the node's code loads:
    the file's architecture is read from its safetensors header when it is on disk, else taken
    from the model catalog (``ModelEntry.kind``); the catalog must also place the file where the
    node looks for it.

A ``VixUiList`` whose choices feed a sampler or scheduler name is judged by its default: when
the default runs, the flow is accepted and the choices the engine lacks are removed from the
list (``Assessment.removed_options`` names them, so the listing can say so); when the default
does not run, the flow is refused. Nobody can then pick a choice that would fail halfway.

``assess`` also returns the graph to install: model inputs renamed to the catalog's file names
(as Visionatrix does on install: a flow may name ``animagineXL40_v4Opt.safetensors`` for the
catalog file ``animagine-xl-4.0-opt.safetensors``) and lists restricted as above.
"""

from __future__ import annotations

import copy
import json
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from visionatrix.engine import registry, sampling_names
from visionatrix.engine.model_inputs import ModelInput, model_inputs
from visionatrix.errors import FlowNotRunnable, InvalidInput
from visionatrix.flows.parser import parse_flow
from visionatrix.models import architecture
from visionatrix.models.catalog import ModelEntry, ModelUse, graph_uses

LIST_NODES = frozenset({"VixUiList"})  # nodes whose output is the value of the choice the user made


@dataclass
class Assessment:
    graph: dict[str, Any]  # what to install: model names remapped, lists restricted
    reasons: list[str] = field(default_factory=list)
    removed_options: dict[str, list[str]] = field(default_factory=dict)  # input name -> labels removed
    missing_node_classes: list[str] = field(default_factory=list)
    models: list[ModelEntry] = field(default_factory=list)  # catalog entries the graph uses, each once

    @property
    def runnable(self) -> bool:
        return not self.reasons


def assess(graph: Mapping[str, Any], catalog: Mapping[str, ModelEntry], models_dir: Path) -> Assessment:
    """Judge ``graph`` (a parsed-valid flow graph) against this engine, ``catalog`` and ``models_dir``."""
    result = Assessment(graph=copy.deepcopy(dict(graph)))
    result.missing_node_classes = registry.missing(registry.graph_classes(graph))
    if result.missing_node_classes:
        result.reasons.append(
            "node classes this engine does not implement: " + ", ".join(result.missing_node_classes)
        )
    _check_sampling(result)
    _check_models(result, catalog, models_dir)
    return result


def require_runnable(
    graph: Mapping[str, Any], catalog: Mapping[str, ModelEntry], models_dir: Path
) -> Assessment:
    """``assess``, raising ``FlowNotRunnable`` with every reason when this server cannot run ``graph``."""
    verdict = assess(graph, catalog, models_dir)
    if not verdict.runnable:
        raise FlowNotRunnable(parse_flow(graph).name, verdict.reasons)
    return verdict


# --- sampler and scheduler names -----------------------------------------------------------------

_NAMES = {
    sampling_names.SAMPLER_INPUT: ("sampler", sampling_names.SAMPLER_NAMES),
    sampling_names.SCHEDULER_INPUT: ("scheduler", sampling_names.SCHEDULER_NAMES),
}


def _check_sampling(result: Assessment) -> None:
    unknown: dict[tuple[str, str], list[str]] = defaultdict(list)  # (what, name) -> where
    for node_id, node in _implemented_nodes(result.graph):
        for input_name, (what, known) in _NAMES.items():
            value = node["inputs"].get(input_name)
            where = f"node {node_id} {node['class_type']}"
            if isinstance(value, str) and value not in known:
                unknown[(what, value)].append(where)
            elif _is_link(value) and str(value[0]) in result.graph:
                _check_list_source(result, str(value[0]), what, known, unknown)
    for (what, name), places in unknown.items():
        result.reasons.append(
            f"{what} {name!r} ({', '.join(sorted(set(places)))}) is not implemented here"
            f" (implemented: {', '.join(_NAMES_BY_WHAT[what])})"
        )


_NAMES_BY_WHAT = {what: known for what, known in _NAMES.values()}


def _check_list_source(
    result: Assessment,
    source_id: str,
    what: str,
    known: tuple[str, ...],
    unknown: dict[tuple[str, str], list[str]],
) -> None:
    """A list input feeding a name: drop the choices the engine lacks; its default must work."""
    source = result.graph[source_id]
    if source.get("class_type") not in LIST_NODES:
        return  # computed at run time: nothing to check before then
    inputs = source["inputs"]
    choices = _choices(source_id, inputs.get("possible_values", "[]"))
    default = inputs.get("default_value")
    chosen = choices.get(default, default) if isinstance(choices, dict) else default
    where = f"node {source_id} {source['class_type']} default"
    if chosen not in known:
        unknown[(what, str(chosen))].append(where)
        return
    keep = _kept(choices, known)
    if len(keep) == len(choices):
        return
    removed = [str(c) for c in choices if c not in keep]
    name = str(inputs.get("custom_id") or f"in_param_{source_id}")
    result.removed_options.setdefault(name, []).extend(removed)
    inputs["possible_values"] = json.dumps(keep)


def _choices(node_id: str, raw: Any) -> dict[str, Any] | list[Any]:
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"node {node_id}: possible_values is not JSON: {exc}") from exc
    return value if isinstance(value, dict | list) else []


def _kept(choices: dict[str, Any] | list[Any], known: tuple[str, ...]) -> dict[str, Any] | list[Any]:
    if isinstance(choices, dict):
        return {label: v for label, v in choices.items() if v in known}
    return [v for v in choices if v in known]


# --- model files ---------------------------------------------------------------------------------


def _check_models(result: Assessment, catalog: Mapping[str, ModelEntry], models_dir: Path) -> None:
    uses: dict[tuple[str, str], list[ModelUse]] = defaultdict(list)
    for use in graph_uses(result.graph, catalog):
        uses[(use.node_id, use.input_name)].append(use)
        if use.entry not in result.models:
            result.models.append(use.entry)
    for node_id, node in _implemented_nodes(result.graph):
        for input_name, declared in model_inputs(node["class_type"]).items():
            if input_name not in node["inputs"]:
                continue
            problem = _check_model_input(
                node, node_id, input_name, declared, uses[(node_id, input_name)], models_dir
            )
            if problem:
                result.reasons.append(problem)


def _check_model_input(
    node: dict[str, Any],
    node_id: str,
    input_name: str,
    declared: ModelInput,
    uses: list[ModelUse],
    models_dir: Path,
) -> str | None:
    value = node["inputs"][input_name]
    where = f"node {node_id} {node['class_type']}.{input_name}"
    if not isinstance(value, str):
        return f"{where}: the model file is chosen at run time, so it cannot be checked before"
    placed = [u.entry for u in uses if u.entry.folder == declared.folder]
    if not placed:
        return _unlisted(where, value, declared, uses, models_dir)
    entry = placed[0]
    node["inputs"][input_name] = entry.filename
    kind, detail = _entry_kind(entry, models_dir)
    return _kind_problem(where, f"{entry.filename} ({entry.name})", kind, detail, declared)


def _unlisted(
    where: str, value: str, declared: ModelInput, uses: list[ModelUse], models_dir: Path
) -> str | None:
    if uses:
        elsewhere = uses[0].entry
        return (
            f"{where}: the catalog puts {elsewhere.filename} ({elsewhere.name}) in MODELS_DIR/"
            f"{elsewhere.folder or '.'}, but the node reads MODELS_DIR/{declared.folder}"
        )
    path = models_dir / declared.folder / value
    if not path.is_file():
        return f"{where}: {value} is in no model catalog entry and not at {path}"
    kind, detail = _file_kind(path, None)
    return _kind_problem(where, value, kind, detail, declared)


def _entry_kind(entry: ModelEntry, models_dir: Path) -> tuple[str | None, str]:
    path = entry.target(models_dir)
    if path.is_file():
        return _file_kind(path, entry.kind)
    return entry.kind, "by the model catalog"


def _file_kind(path: Path, fallback: str | None) -> tuple[str | None, str]:
    """The architecture of a file on disk: its header says, where it has one."""
    if path.suffix.lower() not in (".safetensors", ".sft"):
        return fallback, "by the model catalog"
    try:
        return architecture.file_kind(path), "by its file header"
    except (OSError, InvalidInput) as exc:
        return None, f"unreadable: {exc}"


def _kind_problem(where: str, what: str, kind: str | None, detail: str, declared: ModelInput) -> str | None:
    if kind in declared.kinds:
        return None
    loads = " or ".join(sorted(architecture.describe_kind(k) for k in declared.kinds))
    return (
        f"{where}: {what} is {architecture.describe_kind(kind)} ({detail}), but this node loads only {loads}"
    )


# --- graph walking -------------------------------------------------------------------------------


def _implemented_nodes(graph: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    known = registry.known_classes()
    return [(str(nid), n) for nid, n in graph.items() if isinstance(n, dict) and n.get("class_type") in known]


def _is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[1], int)
