"""What a loader node reads from ``MODELS_DIR``: declared on the node class, read without torch.

A node class that loads weight files names them in a class attribute::

    @node("CheckpointLoaderSimple")
    class CheckpointLoaderSimple:
        model_inputs = {"ckpt_name": ModelInput("checkpoints", {"sdxl"})}

``folder`` is where the node looks (``MODELS_DIR/<folder>/<value>``) and ``kinds`` the
architectures (``visionatrix.models.architecture.KINDS``) its code loads. Installing a flow
checks every model file a declared input names against them, so a node family that learns a
new architecture makes the flows that use it installable by adding the kind here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from visionatrix.engine import registry
from visionatrix.engine.context import ModelStore
from visionatrix.errors import InvalidInput

T = TypeVar("T")


@dataclass(frozen=True)
class ModelInput:
    folder: str
    kinds: frozenset[str]

    def __init__(self, folder: str, kinds: Iterable[str]) -> None:
        object.__setattr__(self, "folder", folder)
        object.__setattr__(self, "kinds", frozenset(kinds))


def model_inputs(class_type: str) -> Mapping[str, ModelInput]:
    """The declared model inputs of ``class_type`` (none for unknown classes and model-free nodes)."""
    cls = registry.lookup(class_type)
    declared = getattr(cls, "model_inputs", None) if cls is not None else None
    return declared if isinstance(declared, Mapping) else {}


def resolve_by_kind(
    models: ModelStore, folder: str, filename: str, handlers: Mapping[str, T], what: str
) -> tuple[Path, T]:
    """The file ``MODELS_DIR/<folder>/<filename>`` and the entry of ``handlers`` for its architecture
    (read from its header); ``InvalidInput`` naming both when there is none. ``what``: who refuses."""
    from visionatrix.models.architecture import describe_kind, file_kind

    path = models.path(folder, filename)
    kind = file_kind(path)
    handler = handlers.get(kind or "")
    if handler is None:
        known = " or ".join(describe_kind(k) for k in handlers)
        raise InvalidInput(f"{what}: {filename} is {describe_kind(kind)}; this node loads {known}")
    return path, handler
