"""The parsed shape of a Visionatrix flow: ``Flow``, its ``InputParam``s and ``FlowOutput``s.

Field names follow the Visionatrix Flow object so ``Flow.model_dump()`` is what old clients
expect from ``/vapi/flows/installed``. Extension fields (``node_classes``, an input's
``class_type``) are additions that old clients ignore.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, computed_field

# Input types whose value arrives as a form field (text) or as an uploaded file.
TEXT_TYPES = frozenset({"text", "number", "list", "bool", "range", "range_scale"})
FILE_TYPES = frozenset({"image", "image-mask", "video", "audio"})
IMAGE_TYPES = frozenset({"image", "image-mask"})


class InputParam(BaseModel):
    """One value a user supplies when creating a task from a flow."""

    name: str = Field(description="Form field name: the node's custom_id, else in_param_<node_id>.")
    display_name: str = ""
    type: str = Field(description="text, number, list, bool, range, range_scale, image, image-mask, ...")
    optional: bool = False
    advanced: bool = False
    hidden: bool = False
    order: int = 99
    translatable: bool = False
    default: Any = None
    min: int | float | None = None
    max: int | float | None = None
    step: int | float | None = None
    options: dict[str, Any] | None = Field(
        default=None, description="list inputs: the choices, label -> value (Visionatrix shape)."
    )
    source_input_name: str | None = Field(
        default=None, description="image-mask / range_scale: the image input this one refers to."
    )
    comfy_node_id: dict[str, list[str]] = Field(
        description="Where the value goes: node id -> path inside the node, e.g. ['inputs', 'text']."
    )
    class_type: str = Field(description="class_type of the node that carries the value (extension).")

    @property
    def is_file(self) -> bool:
        return self.type in FILE_TYPES

    @property
    def is_image(self) -> bool:
        return self.type in IMAGE_TYPES


class FlowOutput(BaseModel):
    """An output node: the task stores its files under this node id."""

    comfy_node_id: int
    type: str = Field(description="image, image-animated, video, audio, text, 3d-model")


class Flow(BaseModel):
    """A flow as Visionatrix describes it, plus the node classes its graph uses."""

    name: str
    display_name: str = ""
    description: str = ""
    author: str = ""
    homepage: str = ""
    documentation: str = ""
    license: str = ""
    tags: list[str] = Field(default_factory=list)
    version: str = ""
    requires: list[str] = Field(default_factory=list)
    is_seed_supported: bool = True
    is_count_supported: bool = True
    is_translations_supported: bool = False
    is_macos_supported: bool = True
    required_memory_gb: float = 0.0
    hidden: bool = False
    sub_flows: list[dict[str, Any]] = Field(default_factory=list)
    models: list[dict[str, Any]] = Field(default_factory=list, description="Filled by the model catalog.")
    input_params: list[InputParam] = Field(default_factory=list)
    outputs: list[FlowOutput] = Field(default_factory=list)
    node_classes: list[str] = Field(default_factory=list, description="Sorted class_type values (extension).")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def is_surprise_me_supported(self) -> bool:
        """Surprise Me (a random prompt per task from the LLM) needs a ``prompt`` input and ``count``."""
        return self.is_count_supported and self.input_param("prompt") is not None

    def input_param(self, name: str) -> InputParam | None:
        return next((p for p in self.input_params if p.name == name), None)

    def output_templates(self) -> list[dict[str, Any]]:
        """The ``outputs`` of a freshly created task: sizes are -1 until the files exist."""
        return [
            {"comfy_node_id": o.comfy_node_id, "type": o.type, "file_size": -1, "batch_size": -1}
            for o in self.outputs
        ]
