"""Run a ComfyUI API graph: demand-driven from output nodes, lazy branches, each node at most once.

Only nodes some output node needs ever run (a flow's metadata node, for one, never does). A node
with ``lazy`` inputs first gets its eager inputs, then ``needed(**eager)`` names the lazy ones to
evaluate; the sources of the others never run. Progress goes to ``env.on_progress(node_id, f)``
per node and ``env.on_overall(f)`` for the whole run; ``env.cancel`` is checked between nodes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from visionatrix.engine import registry
from visionatrix.engine.context import NodeContext, RunEnv
from visionatrix.engine.graph import Graph, GraphNode, parse_graph, upstream
from visionatrix.errors import Cancelled, InvalidInput, MissingNodeClasses, ModelMissing, NodeError

# errors a node may raise that callers handle themselves, so they are not wrapped in NodeError
_PASS_THROUGH = (Cancelled, ModelMissing, NodeError)


def run_graph(graph: Mapping[str, Any] | Graph, env: RunEnv) -> dict[str, list[Path]]:
    """Run ``graph``; return the files each output node wrote (``env.outputs``)."""
    parsed = graph if isinstance(graph, Graph) else parse_graph(graph)
    run = _Run(parsed, env, output_nodes(parsed))
    run.validate()
    run.execute()
    return env.outputs


def output_nodes(graph: Graph) -> list[str]:
    """The ids of nodes whose class is an output node, in topological order."""
    found = [nid for nid in graph.order if _is_output(registry.lookup(graph[nid].class_type))]
    if not found:
        unknown = registry.missing(graph[nid].class_type for nid in graph.sinks())
        if unknown:
            raise MissingNodeClasses(unknown)
        raise InvalidInput("graph has no output node (such as SaveImage): nothing would be produced")
    return found


def _is_output(cls: type | None) -> bool:
    return cls is not None and getattr(cls, "output", False) is True


def _lazy_inputs(cls: type | None) -> tuple[str, ...]:
    return tuple(getattr(cls, "lazy", ()) or ()) if cls is not None else ()


class _Overall:
    """Whole-run progress: each planned node weighs the same; never goes backwards."""

    def __init__(self, emit: Callable[[float], None]) -> None:
        self._emit = emit
        self._planned: set[str] = set()
        self._done: set[str] = set()
        self._current = 0.0
        self._last = -1.0

    def plan(self, nodes: set[str]) -> None:
        # lazy pruning only shrinks the plan, so the fraction only grows
        self._planned = nodes | self._done
        self._report()

    def node_progress(self, fraction: float) -> None:
        self._current = fraction
        self._report()

    def node_done(self, node_id: str) -> None:
        self._done.add(node_id)
        self._current = 0.0
        self._report()

    def finish(self) -> None:
        if self._last < 1.0:
            self._last = 1.0
            self._emit(1.0)

    def _report(self) -> None:
        value = min(1.0, (len(self._done) + self._current) / max(1, len(self._planned)))
        if value > self._last:
            self._last = value
            self._emit(value)


@dataclass
class _TrackedContext(NodeContext):
    """A NodeContext whose in-node progress also feeds the whole-run progress."""

    overall: _Overall | None = None

    def progress(self, fraction: float) -> None:
        super().progress(fraction)
        if self.overall is not None:
            self.overall.node_progress(max(0.0, min(1.0, fraction)))


class _Run:
    """The state of one graph run: results, lazy decisions, progress."""

    def __init__(self, graph: Graph, env: RunEnv, roots: list[str]) -> None:
        self.graph = graph
        self.env = env
        self.roots = roots
        self.results: dict[str, tuple[Any, ...]] = {}
        self.decided: dict[str, frozenset[str]] = {}
        self.instances: dict[str, Any] = {}
        self.overall = _Overall(env.on_overall)
        self._runnable: set[str] | None = None

    def validate(self) -> None:
        """Refuse before anything runs if any node that might run has no implementation."""
        might_run = self._closure(assume_lazy_needed=True)
        unknown_sinks = [
            nid for nid in self.graph.sinks() if registry.lookup(self.graph[nid].class_type) is None
        ]
        classes = {self.graph[nid].class_type for nid in might_run | set(unknown_sinks)}
        missing = registry.missing(classes)
        if missing:
            raise MissingNodeClasses(missing)

    def execute(self) -> None:
        while (node_id := self._next()) is not None:
            if self.env.cancel.is_set():
                raise Cancelled()
            node = self.graph[node_id]
            if self._undecided(node):
                self._decide(node)
            else:
                self._run_node(node)
        self.overall.finish()

    # --- planning -------------------------------------------------------------------------

    def _closure(self, assume_lazy_needed: bool) -> set[str]:
        def follow(node: GraphNode, name: str) -> bool:
            if name not in _lazy_inputs(registry.lookup(node.class_type)):
                return True
            if node.id in self.decided:
                return name in self.decided[node.id]
            return assume_lazy_needed

        return upstream(self.graph, self.roots, follow)

    def _next(self) -> str | None:
        if self._runnable is None:
            self._runnable = self._closure(assume_lazy_needed=False)
            self.overall.plan(self._closure(assume_lazy_needed=True))
        # In topological order the first pending node has all its (runnable) sources done.
        for node_id in self.graph.order:
            if node_id in self._runnable and node_id not in self.results:
                return node_id
        return None

    def _undecided(self, node: GraphNode) -> bool:
        lazy = _lazy_inputs(registry.lookup(node.class_type))
        return bool(lazy) and node.id not in self.decided

    def _decide(self, node: GraphNode) -> None:
        eager = self._inputs(node, chosen=None)
        names = self._call(node, lambda: self._instance(node).needed(**eager))
        names = [names] if isinstance(names, str) else list(names or ())
        self.decided[node.id] = frozenset(names) & set(_lazy_inputs(registry.lookup(node.class_type)))
        self._runnable = None  # the chosen branches join the plan, the others leave it

    # --- running --------------------------------------------------------------------------

    def _run_node(self, node: GraphNode) -> None:
        inputs = self._inputs(node, chosen=self.decided.get(node.id, frozenset()))
        ctx = _TrackedContext(self.env, node.id, node.class_type, overall=self.overall)
        self.env.on_progress(node.id, 0.0)
        result = self._call(node, lambda: self._instance(node).run(ctx, **inputs))
        if not isinstance(result, tuple):
            raise NodeError(node.id, node.class_type, f"run() returned {type(result).__name__}, not a tuple")
        self.results[node.id] = result
        self.env.on_progress(node.id, 1.0)
        self.overall.node_done(node.id)

    def _inputs(self, node: GraphNode, chosen: frozenset[str] | None) -> dict[str, Any]:
        """Literal inputs as written, links replaced by their source's output. Lazy links are
        resolved only when ``chosen`` names them; before the choice (``chosen`` None) they are
        left out, after it the unchosen ones are None (as ComfyUI passes an unevaluated input)."""
        lazy = _lazy_inputs(registry.lookup(node.class_type))
        values: dict[str, Any] = {}
        for name, value in node.inputs.items():
            if name not in node.links:
                values[name] = value
            elif name not in lazy or (chosen is not None and name in chosen):
                values[name] = self._linked_value(node, name)
            elif chosen is not None:
                values[name] = None
        return values

    def _linked_value(self, node: GraphNode, name: str) -> Any:
        source, index = node.links[name]
        result = self.results[source]
        if index >= len(result):
            src = self.graph[source].describe()
            reason = f"input '{name}' links to output {index} of {src}, which has {len(result)} output(s)"
            raise NodeError(node.id, node.class_type, reason)
        return result[index]

    def _instance(self, node: GraphNode) -> Any:
        if node.id not in self.instances:
            cls = registry.lookup(node.class_type)
            if cls is None:  # validate() refuses these; kept for a graph changed under our feet
                raise MissingNodeClasses([node.class_type])
            self.instances[node.id] = cls()
        return self.instances[node.id]

    def _call(self, node: GraphNode, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except _PASS_THROUGH:
            raise
        except Exception as exc:
            raise NodeError(node.id, node.class_type, _reason(exc)) from exc


def _reason(exc: Exception) -> str:
    text = str(exc).strip()
    if getattr(exc, "message", None):  # a VixError's message is written for the user already
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
