"""Visionatrix UI input nodes: each hands the value the user chose (patched into the graph) on.

Their other inputs (display_name, optional, advanced, order, custom_id, hidden...) describe the
form field for the flow parser and are ignored here. The ``*Logic`` nodes pick one branch and
declare the others lazy, so an unchosen branch never runs.
"""

from __future__ import annotations

import json
import re
from typing import Any

from visionatrix.engine.context import NodeContext
from visionatrix.engine.registry import node
from visionatrix.errors import InvalidInput

# VixUiListLogic's branch inputs, in the order of its possible_values
LIST_BRANCHES = ("input_first", "input_second", "input_third", "input_fourth", "input_fifth", "input_sixth")

_RATIO = re.compile(r"^\s*(?P<ratio>\d+:\d+)\s*\((?P<w>\d+)\s*x\s*(?P<h>\d+)\)\s*$")


def as_bool(value: Any, name: str = "state") -> bool:
    """A checkbox value: a bool, 0/1, or the strings true/false (as forms send them)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "false", "0"):
        return value.strip().lower() in ("true", "1")
    raise InvalidInput(f"'{name}' must be true or false, got {value!r}")


def parse_choices(raw: Any) -> list[Any] | dict[str, Any]:
    """A list node's ``possible_values``: a JSON list (or object) string, or already parsed."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"'possible_values' is not valid JSON: {raw!r}") from exc
    if not isinstance(raw, list | dict):
        raise InvalidInput(f"'possible_values' must be a JSON list, got {raw!r}")
    return raw


@node("VixUiWorkflowMetadata")
class VixUiWorkflowMetadata:
    """The flow's name, description and requirements: read by the flow parser, never run."""

    def run(self, ctx: NodeContext, **_: Any) -> tuple[()]:
        return ()


@node("PrimitiveStringMultiline")
class PrimitiveStringMultiline:
    def run(self, ctx: NodeContext, value: str = "", **_: Any) -> tuple[str]:
        return (str(value),)


@node("VixUiPrompt")
class VixUiPrompt:
    def run(self, ctx: NodeContext, text: str = "", **_: Any) -> tuple[str]:
        return (str(text),)


@node("VixUiList")
class VixUiList:
    def run(self, ctx: NodeContext, default_value: Any, possible_values: Any = "[]", **_: Any) -> tuple[Any]:
        choices = parse_choices(possible_values)
        # an object maps the label shown to the user onto the value the graph needs
        if isinstance(choices, dict) and default_value in choices:
            return (choices[default_value],)
        return (default_value,)


@node("VixUiListLogic")
class VixUiListLogic:
    """Passes on the branch at the chosen value's position in ``possible_values``."""

    lazy = LIST_BRANCHES

    def needed(self, default_value: Any, possible_values: Any = "[]", **_: Any) -> list[str]:
        return [self._branch(default_value, possible_values)]

    def run(
        self, ctx: NodeContext, default_value: Any, possible_values: Any = "[]", **inputs: Any
    ) -> tuple[Any]:
        return (inputs.get(self._branch(default_value, possible_values)),)

    @staticmethod
    def _branch(value: Any, raw: Any) -> str:
        choices = list(parse_choices(raw))
        if value not in choices:
            raise InvalidInput(f"value {value!r} is not one of {choices}")
        index = choices.index(value)
        if index >= len(LIST_BRANCHES):
            raise InvalidInput(
                f"value {value!r} is choice {index + 1}; at most {len(LIST_BRANCHES)} are supported"
            )
        return LIST_BRANCHES[index]


@node("VixUiCheckbox")
class VixUiCheckbox:
    """Outputs the state as a bool and as 0/1."""

    def run(self, ctx: NodeContext, state: Any = False, **_: Any) -> tuple[bool, int]:
        value = as_bool(state)
        return value, int(value)


@node("VixUiCheckboxLogic")
class VixUiCheckboxLogic:
    """Passes on ``input_on_state`` when checked, else ``input_off_state``."""

    lazy = ("input_off_state", "input_on_state")

    def needed(self, state: Any = False, **_: Any) -> list[str]:
        return ["input_on_state" if as_bool(state) else "input_off_state"]

    def run(self, ctx: NodeContext, state: Any = False, **inputs: Any) -> tuple[Any]:
        return (inputs.get(self.needed(state)[0]),)


@node("VixCheckboxLogic")
class VixCheckboxLogic(VixUiCheckboxLogic):
    """The same switch without a form field (its state is set by the flow, e.g. remote VAE)."""


@node("VixUiRangeInt")
class VixUiRangeInt:
    def run(self, ctx: NodeContext, value: Any, **_: Any) -> tuple[int]:
        if isinstance(value, bool) or float(value) != int(float(value)):
            raise InvalidInput(f"'value' must be an integer, got {value!r}")
        return (int(float(value)),)


@node("VixUiRangeFloat")
class VixUiRangeFloat:
    def run(self, ctx: NodeContext, value: Any, **_: Any) -> tuple[float]:
        return (float(value),)


@node("VixUiRangeScaleFloat")
class VixUiRangeScaleFloat(VixUiRangeFloat):
    """A scale factor for the image named by ``source_input_name``; the value is all it passes on."""


@node("VixUiAspectRatioSelector")
class VixUiAspectRatioSelector:
    """``"2:3 (832x1216)"`` -> ("2:3", 832, 1216): outputs ratio, width, height."""

    def run(self, ctx: NodeContext, aspect_ratio: str, **_: Any) -> tuple[str, int, int]:
        match = _RATIO.match(str(aspect_ratio))
        if match is None:
            raise InvalidInput(f"aspect ratio {aspect_ratio!r} is not of the form 'W:H (WIDTHxHEIGHT)'")
        return match["ratio"], int(match["w"]), int(match["h"])
