"""The README's table of the shipped catalog: which flows this engine runs, and why the others do not.

    python -m visionatrix.flows.catalog_table [--check] [README.md]

rewrites the table between the README's ``catalog-table`` markers from the same judgement the
server makes at install (``flows.runnable``), against the shipped catalogs and no model files on
disk. ``--check`` only says whether the README is current (a test runs it), so a change that makes
more flows run also updates the table.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from visionatrix.flows.parser import parse_flow
from visionatrix.flows.runnable import assess
from visionatrix.flows.sources import shipped_flows
from visionatrix.models.catalog import load_builtin_catalog

COMMAND = "python -m visionatrix.flows.catalog_table README.md"
BEGIN = f"<!-- catalog-table:begin ({COMMAND}) -->"
END = "<!-- catalog-table:end -->"
_SHOWN_CLASSES = 4
_NO_MODELS_DIR = Path("/nonexistent-models-dir")  # judged by the catalog alone


def markdown_table() -> str:
    catalog = load_builtin_catalog()
    rows = ["| Flow | Name | Runs here | Why not |", "|---|---|---|---|"]
    runnable = 0
    flows = shipped_flows()
    for name, graph in flows.items():
        verdict = assess(graph, catalog, _NO_MODELS_DIR)
        runnable += verdict.runnable
        why = "; ".join(_short(r, verdict.missing_node_classes) for r in verdict.reasons)
        title = parse_flow(graph).display_name.strip()
        rows.append(f"| `{name}` | {_cell(title)} | {'yes' if verdict.runnable else 'no'} | {_cell(why)} |")
    summary = f"{runnable} of {len(flows)} catalog flows run here."
    return "\n".join([summary, "", *rows])


def _short(reason: str, missing: list[str]) -> str:
    """A reason as the table shows it: the first few missing classes; no node ids or provenance."""
    if missing and reason.endswith(", ".join(missing)):
        shown = ", ".join(missing[:_SHOWN_CLASSES])
        more = f" and {len(missing) - _SHOWN_CLASSES} more" if len(missing) > _SHOWN_CLASSES else ""
        return f"node classes not implemented: {shown}{more}"
    return _DETAILS.sub("", _NODE_INPUT.sub("", reason))


_DETAILS = re.compile(r" \((?:node |implemented: |by |[A-Za-z0-9_.-]+\)?$)[^()]*\)")
_NODE_INPUT = re.compile(r"^node \d+ ")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(readme: str) -> str:
    """``readme`` with the table between the markers replaced by the current one."""
    if BEGIN not in readme or END not in readme:
        raise ValueError(f"the README has no {BEGIN} ... {END} markers")
    head, rest = readme.split(BEGIN, 1)
    _old, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{markdown_table()}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("readme", type=Path, nargs="?", default=Path("README.md"))
    parser.add_argument("--check", action="store_true", help="exit 1 if the README's table is not current")
    args = parser.parse_args(argv)
    text = args.readme.read_text(encoding="utf-8")
    fresh = render(text)
    if args.check:
        if fresh != text:
            print(f"{args.readme}: the catalog table is out of date; run {COMMAND}", file=sys.stderr)
            return 1
        return 0
    args.readme.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
