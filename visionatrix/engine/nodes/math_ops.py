"""Integer and math helper nodes that flows use to derive one input from another.

    Evaluate Integers(python_expression, print_to_console, a, b, c) -> (INT, FLOAT, STRING)
    easy mathInt(a, b, operation)                                     -> (INT,)

``Evaluate Integers`` is efficiency-nodes-comfyui's ``TSC_EvaluateInts``: the expression is
evaluated by ``simpleeval`` (the library the node pack uses: Python expression syntax, no
attribute access, no imports, bounded powers and string sizes) with the names ``a``, ``b`` and
``c``; the result is returned as ``int(result)``, ``float(result)`` and ``str(result)``. The SDXL
flows compute their fast-run step count with it (``a//3``).
"""

from __future__ import annotations

import logging
from typing import Any

from visionatrix.engine.context import NodeContext
from visionatrix.engine.registry import node
from visionatrix.errors import InvalidInput

log = logging.getLogger(__name__)


def evaluate(expression: str, names: dict[str, Any]) -> Any:
    """``expression`` evaluated by simpleeval over ``names``; ``InvalidInput`` naming it if it fails."""
    from simpleeval import InvalidExpression, simple_eval

    try:
        return simple_eval(expression, names=names)
    except (InvalidExpression, ArithmeticError, SyntaxError, TypeError, ValueError) as exc:
        raise InvalidInput(f"expression {expression!r} cannot be evaluated: {exc}") from exc


@node("Evaluate Integers")
class EvaluateIntegers:
    def run(
        self,
        ctx: NodeContext,
        python_expression: str = "((a + b) - c) / 2",
        print_to_console: str = "False",
        a: int = 0,
        b: int = 0,
        c: int = 0,
        **_: Any,
    ) -> tuple[int, float, str]:
        expression = str(python_expression)
        result = evaluate(expression, {"a": a, "b": b, "c": c})
        try:
            as_int, as_float = int(result), float(result)
        except (TypeError, ValueError, OverflowError) as exc:
            raise InvalidInput(f"expression {expression!r} gave {result!r}, not a number") from exc
        if str(print_to_console) == "True":
            log.info("Evaluate Integers: a=%s b=%s c=%s: %s = %s", a, b, c, expression, result)
        return as_int, as_float, str(result)


_INT_OPERATIONS = {
    "add": lambda a, b: a + b,
    "subtract": lambda a, b: a - b,
    "multiply": lambda a, b: a * b,
    "divide": lambda a, b: a // b,
    "modulo": lambda a, b: a % b,
    "power": lambda a, b: a**b,
}
_MAX_EXPONENT = 4096  # a bigger power of an integer beyond ±1 is no count or size a flow uses


@node("easy mathInt")
class EasyMathInt:
    """ComfyUI-Easy-Use's ``mathIntOperation``: ``a <operation> b`` on integers (``divide`` floors)."""

    def run(self, ctx: NodeContext, a: int = 0, b: int = 0, operation: str = "add", **_: Any) -> tuple[int]:
        apply = _INT_OPERATIONS.get(str(operation))
        if apply is None:
            raise InvalidInput(
                f"easy mathInt: operation {operation!r} is not one of {', '.join(_INT_OPERATIONS)}"
            )
        a, b = int(a), int(b)
        if operation == "power" and abs(a) > 1 and not 0 <= b <= _MAX_EXPONENT:
            raise InvalidInput(f"easy mathInt: {a} ** {b} is out of range (exponent 0..{_MAX_EXPONENT})")
        try:
            return (apply(a, b),)
        except ZeroDivisionError as exc:
            raise InvalidInput(f"easy mathInt: {operation} of {a} by zero") from exc
