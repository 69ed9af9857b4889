"""Node registry: ``@node("ClassType")`` registers a node class by its ComfyUI ``class_type``.

This module and every ``engine/nodes/*`` module stay importable without torch: the API process
asks ``missing(graph)`` to refuse flows the engine cannot run. Node modules import heavy
libraries inside ``run``; network architectures live in ``engine/nets`` and load on first use.

A node class:

    @node("ImageInvert")
    class ImageInvert:
        def run(self, ctx: NodeContext, image: Image) -> tuple[Image]: ...

``run`` gets the node's resolved inputs as keyword arguments and returns a tuple: link
``[node_id, i]`` refers to element ``i``. Output nodes set ``output = True`` and register the
files they write through ``ctx.add_output``. A node with lazily evaluated inputs lists them in
``lazy`` and implements ``needed(**eager_inputs) -> list[str]`` naming the lazy inputs to
evaluate (a ``*Logic`` node picks one branch, the other is never run).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

_NODES: dict[str, type] = {}
_loaded = False

T = TypeVar("T", bound=type)


def node(class_type: str) -> Callable[[T], T]:
    """Register ``cls`` as the implementation of ``class_type``."""

    def register(cls: T) -> T:
        if class_type in _NODES and _NODES[class_type] is not cls:
            raise ValueError(f"node class {class_type!r} registered twice")
        _NODES[class_type] = cls
        cls.class_type = class_type  # type: ignore[attr-defined]
        return cls

    return register


def _load_builtin_nodes() -> None:
    global _loaded
    if _loaded:
        return
    from visionatrix.engine import nodes

    for info in pkgutil.iter_modules(nodes.__path__):
        importlib.import_module(f"{nodes.__name__}.{info.name}")
    _loaded = True


def load_modules(names: Iterable[str]) -> None:
    """Import extra node modules (custom nodes): each registers its classes with ``@node``."""
    for name in names:
        if name:
            importlib.import_module(name)


def lookup(class_type: str) -> type | None:
    _load_builtin_nodes()
    return _NODES.get(class_type)


def known_classes() -> frozenset[str]:
    _load_builtin_nodes()
    return frozenset(_NODES)


def missing(class_types: Iterable[str]) -> list[str]:
    """The class types among ``class_types`` that no registered node implements, sorted."""
    known = known_classes()
    return sorted({c for c in class_types if c not in known})


def graph_classes(graph: Mapping[str, Mapping[str, Any]]) -> set[str]:
    return {str(n.get("class_type", "")) for n in graph.values() if isinstance(n, Mapping)}
