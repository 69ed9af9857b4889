"""Text nodes: ``SaveText|pysssss`` (ComfyUI-Custom-Scripts) writes its text as the task's result;
``StringConcatenate``, ``StringReplace`` (ComfyUI) and ``ShowText|pysssss`` pass text on.

The result is one UTF-8 ``.txt`` file per node (output type ``text``), downloaded like an image
result (``text/plain``). The pack's ``root_dir``/``file`` choose a place under ComfyUI's folders;
Visionatrix renames the file per task anyway, so here they are ignored, and since each task
starts from a fresh file, ``append``/``insert`` write exactly the text in every mode.
"""

from __future__ import annotations

from typing import Any

from visionatrix.engine.context import NodeContext
from visionatrix.engine.registry import node


@node("SaveText|pysssss")
class SaveText:
    output = True

    def run(self, ctx: NodeContext, text: Any = "", **_: Any) -> tuple[str]:
        value = text if isinstance(text, str) else str(text)
        ctx.output_dir.mkdir(parents=True, exist_ok=True)
        path = ctx.output_dir / f"{ctx.node_id}_0.txt"
        path.write_text(value, encoding="utf-8")
        ctx.add_output(path)
        return (value,)


@node("StringConcatenate")
class StringConcatenate:
    """ComfyUI's ``string_a + delimiter + string_b``."""

    def run(
        self, ctx: NodeContext, string_a: Any = "", string_b: Any = "", delimiter: Any = "", **_: Any
    ) -> tuple[str]:
        return (str(delimiter).join((str(string_a), str(string_b))),)


@node("StringReplace")
class StringReplace:
    """ComfyUI's ``string.replace(find, replace)``: every occurrence."""

    def run(
        self, ctx: NodeContext, string: Any = "", find: Any = "", replace: Any = "", **_: Any
    ) -> tuple[str]:
        return (str(string).replace(str(find), str(replace)),)


@node("ShowText|pysssss")
class ShowText:
    """Shows text in ComfyUI's editor and passes it on; here only the passing on is left (it is
    not a task output, as in Visionatrix), so it runs when a later node reads it."""

    def run(self, ctx: NodeContext, text: Any = "", **_: Any) -> tuple[str]:
        return (text if isinstance(text, str) else str(text),)
