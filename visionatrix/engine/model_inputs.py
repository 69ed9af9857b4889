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

from visionatrix.engine import registry


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
