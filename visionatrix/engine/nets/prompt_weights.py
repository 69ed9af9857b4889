"""ComfyUI's prompt-weight syntax, parsed the way ComfyUI parses it (``comfy/sd1_clip.py``).

    (word)        weight × 1.1 (nesting multiplies: ((word)) is 1.21)
    (word:1.3)    weight 1.3 (replaces the enclosing weight; the number follows the last ':')
    \\( \\)        literal parentheses
    [word]        no special meaning (A1111's down-weighting is not ComfyUI syntax)

An unclosed '(' runs to the end of the text; a stray ')' is kept as text. Pure Python.
"""

from __future__ import annotations

_OPEN_ESCAPE, _CLOSE_ESCAPE = "\0\2", "\0\1"


def escape(text: str) -> str:
    return text.replace("\\)", _CLOSE_ESCAPE).replace("\\(", _OPEN_ESCAPE)


def unescape(text: str) -> str:
    return text.replace(_CLOSE_ESCAPE, ")").replace(_OPEN_ESCAPE, "(")


def split_parentheses(text: str) -> list[str]:
    """Top-level pieces: plain runs and balanced ``(...)`` groups, in order."""
    pieces: list[str] = []
    current = ""
    depth = 0
    for char in text:
        if char == "(":
            if depth == 0 and current:
                pieces.append(current)
                current = ""
            current += char
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                pieces.append(current + ")")
                current = ""
            else:
                current += char
        else:
            current += char
    if current:
        pieces.append(current)
    return pieces


def _weighted(text: str, weight: float) -> list[tuple[str, float]]:
    out: list[tuple[str, float]] = []
    for piece in split_parentheses(text):
        if not (len(piece) >= 2 and piece[0] == "(" and piece[-1] == ")"):
            out.append((piece, weight))
            continue
        inner = piece[1:-1]
        inner_weight = weight * 1.1
        colon = inner.rfind(":")
        if colon > 0:
            try:
                inner_weight = float(inner[colon + 1 :])
                inner = inner[:colon]
            except ValueError:
                pass  # "(a:b)" without a number is text weighted × 1.1
        out += _weighted(inner, inner_weight)
    return out


def parse(text: str) -> list[tuple[str, float]]:
    """``text`` as (segment, weight) pairs with escapes resolved."""
    return [(unescape(segment), weight) for segment, weight in _weighted(escape(text), 1.0)]
