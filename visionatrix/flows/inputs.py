"""Check a task's form values against its flow's ``input_params`` before anything is queued.

Multipart forms carry every value as a string; each one is coerced to its parameter's type
and checked (range bounds, list choices), and every error names the parameter and what it
accepts. Reserved task fields (``seed``, ``count``...) and unknown fields are not flow
inputs and are ignored here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from visionatrix.errors import InvalidInput
from visionatrix.flows.model import Flow, InputParam

_TRUE = frozenset({"1", "true", "on", "yes", "y"})
_FALSE = frozenset({"0", "false", "off", "no", "n"})


def validate_inputs(flow: Flow, values: Mapping[str, Any], provided_files: set[str]) -> dict[str, Any]:
    """The typed value of every non-file input of ``flow``: given, or the default of an optional one.

    File inputs are satisfied when their name is in ``provided_files``; they are not in the
    result (their stored file names travel separately).
    """
    result: dict[str, Any] = {}
    for param in flow.input_params:
        if param.is_file:
            _check_file(param, provided_files)
        elif param.name in values:
            result[param.name] = coerce_value(param, values[param.name])
        elif param.optional:
            result[param.name] = param.default
        else:
            raise InvalidInput(f"missing required input {param.name!r} ({_describe(param)})")
    return result


def coerce_value(param: InputParam, value: Any) -> Any:
    """``value`` as ``param``'s type, or ``InvalidInput`` naming the parameter and what it accepts."""
    coerce = _COERCERS.get(param.type)
    if coerce is None:
        raise InvalidInput(f"input {param.name!r} has type {param.type!r}, which takes no form value")
    return coerce(param, value)


def _check_file(param: InputParam, provided_files: set[str]) -> None:
    if param.name not in provided_files and not param.optional:
        raise InvalidInput(f"missing required input {param.name!r} ({_describe(param)})")


def _text(param: InputParam, value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _bool(param: InputParam, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise InvalidInput(f"input {param.name!r} must be a boolean (1/0, true/false, on/off), got {value!r}")


def _list(param: InputParam, value: Any) -> str:
    options = param.options or {}
    choice = _text(param, value)
    if choice not in options:
        allowed = ", ".join(repr(o) for o in options)
        raise InvalidInput(f"input {param.name!r} must be one of {allowed}; got {value!r}")
    return choice


def _range(param: InputParam, value: Any) -> int | float:
    number = _integer(param, value) if isinstance(param.default, int) else _float(param, value)
    if (param.min is not None and number < param.min) or (param.max is not None and number > param.max):
        raise InvalidInput(f"input {param.name!r} must be within {param.min}..{param.max}, got {value!r}")
    return number


def _number(param: InputParam, value: Any) -> int | float:
    number = _float(param, value)
    return int(number) if isinstance(param.default, int) and number.is_integer() else number


def _float(param: InputParam, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number):
        raise InvalidInput(f"input {param.name!r} must be a number ({_describe(param)}), got {value!r}")
    return number


def _integer(param: InputParam, value: Any) -> int:
    number = _float(param, value)
    if not number.is_integer():
        raise InvalidInput(f"input {param.name!r} must be a whole number ({_describe(param)}), got {value!r}")
    return int(number)


def _describe(param: InputParam) -> str:
    if param.options is not None:
        return f"{param.type}, one of " + ", ".join(repr(o) for o in param.options)
    if param.min is not None or param.max is not None:
        return f"{param.type} {param.min}..{param.max}"
    return param.type


_COERCERS: dict[str, Callable[[InputParam, Any], Any]] = {
    "text": _text,
    "bool": _bool,
    "list": _list,
    "range": _range,
    "range_scale": _range,
    "number": _number,
}
