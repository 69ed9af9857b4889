"""MathExpression|pysssss (pythongosssss/ComfyUI-Custom-Scripts): arithmetic on a, b, c.

    MathExpression|pysssss(expression, a?, b?, c?) -> (INT, FLOAT)

The expression is parsed with ``ast`` and only arithmetic is evaluated, as the pack does: numbers,
``+ - * / // % **``, bit operators, comparisons and ``and``/``or``/``not`` (giving 1 or 0), the
functions round, ceil, floor, min, max, sqrt, int, iif, randomint, randomchoice, and ``a.width`` /
``a.height`` of an IMAGE or LATENT input. Nothing else runs: no names but a, b, c, no attribute
access beyond width/height. The pack's ``Node.widget`` references read the UI's workflow, which an
API graph does not carry: refused by name. Powers and shifts are bounded so that no expression
can stall the worker.
"""

from __future__ import annotations

import ast
import math
import operator as op
import random
from collections.abc import Callable
from typing import Any

from visionatrix.engine.context import NodeContext
from visionatrix.engine.registry import node
from visionatrix.errors import InvalidInput

MAX_EXPRESSION = 2000
MAX_EXPONENT = 1000
MAX_SHIFT = 4096

_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: op.add,
    ast.Sub: op.sub,
    ast.Mult: op.mul,
    ast.Div: op.truediv,
    ast.FloorDiv: op.floordiv,
    ast.Pow: op.pow,
    ast.BitXor: op.xor,
    ast.Mod: op.mod,
    ast.BitAnd: op.and_,
    ast.BitOr: op.or_,
    ast.RShift: op.rshift,
    ast.LShift: op.lshift,
    ast.And: lambda a, b: 1 if a and b else 0,
    ast.Or: lambda a, b: 1 if a or b else 0,
}
_UNARY: dict[type, Callable[[Any], Any]] = {
    ast.USub: op.neg,
    ast.Invert: op.invert,
    ast.Not: lambda a: 0 if a else 1,
    ast.UAdd: op.pos,
}
_COMPARE: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: op.eq,
    ast.NotEq: op.ne,
    ast.Gt: op.gt,
    ast.GtE: op.ge,
    ast.Lt: op.lt,
    ast.LtE: op.le,
}
# name -> (least arguments, most (None: any), function)
_FUNCTIONS: dict[str, tuple[int, int | None, Callable[..., Any]]] = {
    "round": (1, 2, lambda a, b=None: round(a, b)),
    "ceil": (1, 1, math.ceil),
    "floor": (1, 1, math.floor),
    "min": (2, None, min),
    "max": (2, None, max),
    "randomint": (2, 2, random.randint),
    "randomchoice": (2, None, lambda *args: random.choice(args)),
    "sqrt": (1, 1, math.sqrt),
    "int": (1, 1, int),
    "iif": (3, 3, lambda a, b, c=None: b if a else c),
}


def _size(value: Any, attribute: str) -> int:
    if isinstance(value, dict) and "samples" in value:  # LATENT: pixels are 8 per latent cell
        shape = value["samples"].shape
        return int(shape[3] if attribute == "width" else shape[2]) * 8
    shape = getattr(value, "shape", None)
    if shape is None or len(shape) != 4:
        raise InvalidInput(f"MathExpression: .{attribute} needs an IMAGE or LATENT input")
    return int(shape[2] if attribute == "width" else shape[1])


class _Evaluator:
    def __init__(self, names: dict[str, Any]) -> None:
        self.names = names

    def eval(self, node: ast.AST) -> Any:
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, int | float)
            and not isinstance(node.value, bool)
        ):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            return self._binary(node.op, node.left, node.right)
        if isinstance(node, ast.BoolOp) and type(node.op) in _BINARY:
            return self._binary(node.op, node.values[0], node.values[1])
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            return _UNARY[type(node.op)](self.eval(node.operand))
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            return self._attribute(node.value.id, node.attr)
        if isinstance(node, ast.Name):
            return self._name(node.id)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            return self._call(node.func.id, node.args)
        if isinstance(node, ast.Compare) and type(node.ops[0]) in _COMPARE:
            left, right = self.eval(node.left), self.eval(node.comparators[0])
            return 1 if _COMPARE[type(node.ops[0])](left, right) else 0
        raise InvalidInput(f"MathExpression: {ast.dump(node)[:80]} is not supported")

    def _binary(self, operator: ast.AST, left_node: ast.AST, right_node: ast.AST) -> Any:
        left, right = self.eval(left_node), self.eval(right_node)
        left = left if isinstance(left, int) else float(left)
        right = right if isinstance(right, int) else float(right)
        if isinstance(operator, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise InvalidInput(f"MathExpression: exponent {right} is too large (at most {MAX_EXPONENT})")
        if isinstance(operator, ast.LShift | ast.RShift) and abs(right) > MAX_SHIFT:
            raise InvalidInput(f"MathExpression: shift by {right} is too large (at most {MAX_SHIFT})")
        try:
            return _BINARY[type(operator)](left, right)
        except (ZeroDivisionError, OverflowError, TypeError, ValueError) as exc:
            raise InvalidInput(f"MathExpression: {exc}") from exc

    def _attribute(self, name: str, attribute: str) -> Any:
        if name in self.names and attribute in ("width", "height"):
            return _size(self.names[name], attribute)
        raise InvalidInput(
            f"MathExpression: {name}.{attribute}: references to other nodes' widgets are not supported"
        )

    def _name(self, name: str) -> Any:
        if name not in self.names:
            raise InvalidInput(f"MathExpression: name {name!r} not found (use a, b or c)")
        value = self.names[name]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidInput(f"MathExpression: {name} is not a number; use {name}.width or {name}.height")
        return value

    def _call(self, name: str, args: list[ast.expr]) -> Any:
        if name not in _FUNCTIONS:
            raise InvalidInput(f"MathExpression: unknown function {name!r}")
        least, most, function = _FUNCTIONS[name]
        if len(args) < least or (most is not None and len(args) > most):
            upto = " or more" if most is None else f" to {most}"
            raise InvalidInput(f"MathExpression: {name} takes {least}{upto} arguments")
        try:
            return function(*(self.eval(a) for a in args))
        except (TypeError, ValueError, OverflowError) as exc:
            raise InvalidInput(f"MathExpression: {name}: {exc}") from exc


@node("MathExpression|pysssss")
class MathExpression:
    def run(
        self, ctx: NodeContext, expression: str, a: Any = None, b: Any = None, c: Any = None, **_: Any
    ) -> tuple[int, float]:
        text = str(expression).replace("\n", " ").replace("\r", "")
        if len(text) > MAX_EXPRESSION:
            raise InvalidInput(f"MathExpression: the expression is longer than {MAX_EXPRESSION} characters")
        try:
            tree = ast.parse(text, mode="eval").body
        except SyntaxError as exc:
            raise InvalidInput(f"MathExpression: {text!r} is not an expression: {exc.msg}") from exc
        result = _Evaluator({"a": a, "b": b, "c": c}).eval(tree)
        try:
            return int(result), float(result)
        except (TypeError, ValueError, OverflowError) as exc:
            raise InvalidInput(f"MathExpression: the result {result!r} is not a number") from exc
