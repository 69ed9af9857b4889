"""Integer and math helper nodes that flows use to derive one input from another.

    Evaluate Integers(python_expression, print_to_console, a, b, c) -> (INT, FLOAT, STRING)

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
