"""``Evaluate Integers``: what efficiency-nodes' ``TSC_EvaluateInts`` returns for the same expression."""

from __future__ import annotations

from pathlib import Path

import pytest

from visionatrix.engine.context import NodeContext, RunEnv
from visionatrix.engine.registry import lookup
from visionatrix.errors import InvalidInput
from visionatrix.models.cache import ModelStore

pytest.importorskip("simpleeval", reason="Evaluate Integers needs the worker extra")


def _evaluate(tmp_path: Path, expression: str, **names: int) -> tuple[int, float, str]:
    ctx = NodeContext(RunEnv(ModelStore(tmp_path), tmp_path, tmp_path, tmp_path), "1", "Evaluate Integers")
    cls = lookup("Evaluate Integers")
    assert cls is not None
    return cls().run(ctx, python_expression=expression, print_to_console="False", **names)  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("expression", "names", "expected"),
    [
        ("a//3", {"a": 50}, (16, 16.0, "16")),  # the SDXL flows' fast-run step count
        ("a//3", {"a": 30}, (10, 10.0, "10")),
        ("((a + b) - c) / 2", {"a": 3, "b": 4, "c": 2}, (2, 2.5, "2.5")),  # the node's default expression
        ("-a / 4", {"a": 7}, (-1, -1.75, "-1.75")),  # int() truncates toward zero
        ("a * b if a > b else c", {"a": 3, "b": 2, "c": 9}, (6, 6.0, "6")),
        ("b", {}, (0, 0.0, "0")),  # unset inputs are 0
    ],
)
def test_results_are_int_float_and_str_of_the_value(
    tmp_path: Path, expression: str, names: dict[str, int], expected: tuple[int, float, str]
) -> None:
    result = _evaluate(tmp_path, expression, **names)
    assert result == expected and type(result[0]) is int and type(result[1]) is float


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("x + 1", "'x' is not defined"),
        ("a // 0", "division"),
        ("a.__class__", "not available"),
        ("__import__('os')", "not defined"),
        ("2 ** 99999999", "99999999"),
        ("a +", "invalid syntax"),
        ("'text'", "not a number"),
    ],
)
def test_bad_expressions_are_refused_naming_them(tmp_path: Path, expression: str, problem: str) -> None:
    with pytest.raises(InvalidInput, match=problem) as info:
        _evaluate(tmp_path, expression, a=3)
    assert repr(expression) in str(info.value)


def _math_int(tmp_path: Path, a: int, b: int, operation: str) -> int:
    ctx = NodeContext(RunEnv(ModelStore(tmp_path), tmp_path, tmp_path, tmp_path), "1", "easy mathInt")
    cls = lookup("easy mathInt")
    assert cls is not None
    return cls().run(ctx, a=a, b=b, operation=operation)[0]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("a", "b", "operation", "expected"),
    [(7, 1, "add", 8), (7, 9, "subtract", -2), (7, 3, "multiply", 21), (7, 2, "divide", 3),
     (-7, 2, "divide", -4), (7, 3, "modulo", 1), (-7, 3, "modulo", 2), (2, 10, "power", 1024)],
)  # fmt: skip
def test_easy_math_int_is_pythons_integer_arithmetic(
    tmp_path: Path, a: int, b: int, operation: str, expected: int
) -> None:
    assert _math_int(tmp_path, a, b, operation) == expected


def test_easy_math_int_refuses_what_it_cannot_compute(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="divide of 3 by zero"):
        _math_int(tmp_path, 3, 0, "divide")
    with pytest.raises(InvalidInput, match="out of range"):
        _math_int(tmp_path, 3, 10**9, "power")
    with pytest.raises(InvalidInput, match="'root' is not one of"):
        _math_int(tmp_path, 3, 2, "root")
