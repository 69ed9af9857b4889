"""ComfyUI API-format graphs: parse, validate, order. Pure: no IO, no node classes.

A graph is ``{node_id: {"class_type": str, "inputs": {name: value | link}, "_meta": {...}}}``.
A link is ``[source_node_id, output_index]``; ids may be written as str or int and are
normalised to str. Every error names the node (and input) at fault.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from visionatrix.errors import InvalidInput

Link = tuple[str, int]


@dataclass(frozen=True)
class GraphNode:
    id: str
    class_type: str
    inputs: dict[str, Any]
    links: dict[str, Link] = field(default_factory=dict)
    title: str = ""

    def describe(self) -> str:
        return f"node {self.id} ({self.class_type})"


@dataclass(frozen=True)
class Graph:
    nodes: dict[str, GraphNode]
    order: tuple[str, ...]  # topological: every node after all of its sources

    def __getitem__(self, node_id: str) -> GraphNode:
        return self.nodes[node_id]

    def sinks(self) -> list[str]:
        """Nodes whose outputs nothing consumes, in topological order."""
        used = {src for n in self.nodes.values() for src, _ in n.links.values()}
        return [nid for nid in self.order if nid not in used]


def is_link(value: Any) -> bool:
    """ComfyUI's link shape: a two-item list ``[node_id, output_index]``."""
    if not isinstance(value, list | tuple) or len(value) != 2:
        return False
    source, index = value
    return (
        isinstance(source, str | int)
        and not isinstance(source, bool)
        and isinstance(index, int)
        and not isinstance(index, bool)
    )


def parse_graph(raw: Any) -> Graph:
    """Validate ``raw`` and return it as a ``Graph`` in topological order."""
    if not isinstance(raw, Mapping) or not raw:
        raise InvalidInput("graph must be a non-empty JSON object of nodes")
    nodes = {str(nid): _parse_node(str(nid), spec) for nid, spec in raw.items()}
    _check_links(nodes)
    return Graph(nodes=nodes, order=tuple(topological_order(nodes)))


def _parse_node(node_id: str, spec: Any) -> GraphNode:
    if not isinstance(spec, Mapping):
        raise InvalidInput(f"node {node_id}: must be an object with 'class_type' and 'inputs'")
    class_type = spec.get("class_type")
    if not isinstance(class_type, str) or not class_type:
        raise InvalidInput(f"node {node_id}: 'class_type' must be a non-empty string")
    inputs = spec.get("inputs", {})
    if not isinstance(inputs, Mapping):
        raise InvalidInput(f"node {node_id} ({class_type}): 'inputs' must be an object")
    links = {name: (str(v[0]), int(v[1])) for name, v in inputs.items() if is_link(v)}
    meta = spec.get("_meta")
    title = str(meta.get("title", "")) if isinstance(meta, Mapping) else ""
    return GraphNode(node_id, class_type, dict(inputs), links, title)


def _check_links(nodes: Mapping[str, GraphNode]) -> None:
    for node in nodes.values():
        for name, (source, index) in node.links.items():
            if source not in nodes:
                raise InvalidInput(f"{node.describe()}: input '{name}' links to missing node {source}")
            if index < 0:
                raise InvalidInput(f"{node.describe()}: input '{name}' has negative output index {index}")


def _sort_key(node_id: str) -> tuple[int, int, str]:
    # numeric ids in numeric order ("9" before "10"), then the rest by name: a stable, readable order
    return (0, int(node_id), "") if node_id.isdigit() else (1, 0, node_id)


def topological_order(nodes: Mapping[str, GraphNode]) -> list[str]:
    """Kahn's algorithm; raises ``InvalidInput`` naming a cycle's nodes."""
    waiting = {nid: {src for src, _ in n.links.values()} for nid, n in nodes.items()}
    consumers: dict[str, set[str]] = {nid: set() for nid in nodes}
    for nid, sources in waiting.items():
        for src in sources:
            consumers[src].add(nid)
    ready = [(_sort_key(nid), nid) for nid, srcs in waiting.items() if not srcs]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        _, nid = heapq.heappop(ready)
        order.append(nid)
        for consumer in consumers[nid]:
            waiting[consumer].discard(nid)
            if not waiting[consumer]:
                heapq.heappush(ready, (_sort_key(consumer), consumer))
    if len(order) < len(nodes):
        cycle = _find_cycle({nid: srcs for nid, srcs in waiting.items() if srcs})
        raise InvalidInput("graph has a cycle through nodes " + " -> ".join(cycle))
    return order


def _find_cycle(waiting: Mapping[str, set[str]]) -> list[str]:
    """One concrete cycle among nodes Kahn could not order (each still waits on a source)."""
    # Walking "waits on" edges among unordered nodes must revisit a node: that loop is a cycle.
    path: list[str] = []
    seen: dict[str, int] = {}
    current = min(waiting, key=_sort_key)
    while current not in seen:
        seen[current] = len(path)
        path.append(current)
        current = min((s for s in waiting[current] if s in waiting), key=_sort_key)
    loop = path[seen[current] :]
    loop.reverse()  # report in data-flow direction: source -> consumer
    return [*loop, loop[0]]


def upstream(
    graph: Graph,
    roots: Iterable[str],
    follow: Callable[[GraphNode, str], bool] = lambda node, name: True,
) -> set[str]:
    """``roots`` and every node they draw from through the links ``follow(node, input)`` accepts."""
    found: set[str] = set()
    stack = list(roots)
    while stack:
        nid = stack.pop()
        if nid in found:
            continue
        found.add(nid)
        node = graph.nodes[nid]
        stack.extend(src for name, (src, _) in node.links.items() if follow(node, name))
    return found
