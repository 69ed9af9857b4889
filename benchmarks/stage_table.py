"""The stage table of a warm task: where each millisecond goes, from the worker's stage log.

The worker writes one JSON record per task when ``VIX_STAGE_LOG`` names a file
(``visionatrix/worker/stages.py``): its spans (claim, inputs, each node, results, cleanup) and
its HTTP calls with the server's own time (``Server-Timing``). The benchmark adds what only the
client sees (its create call, the poll that saw 100) and prints the median of each stage.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class ClientTimes:
    """What the benchmark's own client saw of one task (time.time() values)."""

    sent: float
    answered: float
    server_ms: float | None
    seen: float  # the answer that showed progress 100 arrived


def read_records(path: Path) -> dict[int, dict[str, Any]]:
    if not path.exists():
        return {}
    records = (json.loads(line) for line in path.read_text().splitlines() if line.strip())
    return {int(r["task_id"]): r for r in records}


def _span(record: dict[str, Any], name: str) -> dict[str, float] | None:
    return next((s for s in record["spans"] if s["name"] == name), None)


def _ms(seconds: float) -> float:
    return seconds * 1000.0


def _call_server_ms(record: dict[str, Any], method: str, path: str) -> float | None:
    found = [c["server_ms"] for c in record["calls"] if c["method"] == method and c["path"] == path]
    return sum(x for x in found if x is not None) if found else None


def task_stages(
    record: dict[str, Any], classes: dict[str, str], client: ClientTimes | None = None
) -> dict[str, float]:
    """Milliseconds per stage, in the order they happen. Rows marked ``(off path)`` happen after
    the task is done for its client; the others add up to the total (the rest is ``gaps``)."""
    rows: dict[str, float] = {}
    claim, inputs, graph, results = (_span(record, n) for n in ("claim", "inputs", "graph", "results"))
    if client is not None:
        rows["client: create call"] = _ms(client.answered - client.sent)
        if client.server_ms is not None:
            rows["  the server's share of the create"] = client.server_ms
        if claim is not None:  # the claim may land before the create's answer reaches the client
            rows["queue: create sent -> claimed by the worker"] = _ms(claim["end"] - client.sent)
    if inputs is not None:
        rows["worker: fetch inputs"] = _ms(inputs["end"] - inputs["start"])
    nodes = 0.0
    for span in record["spans"]:
        if span["name"].startswith("node "):
            node_id = span["name"][5:]
            rows[f"worker: node {node_id} {classes.get(node_id, '?')}"] = _ms(span["end"] - span["start"])
            nodes += span["end"] - span["start"]
    if graph is not None:
        rows["worker: executor around the nodes"] = _ms(graph["end"] - graph["start"] - nodes)
    if results is not None:
        rows["worker: upload results (completes the task)"] = _ms(results["end"] - results["start"])
        server = _call_server_ms(record, "PUT", "/vapi/tasks/results")
        if server is not None:
            rows["  the server's share of the upload"] = server
        if client is not None:
            rows["client: stored -> a 10 ms poll sees 100"] = _ms(client.seen - results["end"])
    if client is not None:
        # the create call overlaps the claim: the path is sent -> claimed -> ... -> seen
        counted = sum(v for k, v in rows.items() if not k.startswith(" ") and k != "client: create call")
        total = _ms(client.seen - client.sent)
        rows["gaps between stages"] = total - counted
        rows["total: create -> 100 seen"] = total
    cleanup = _span(record, "cleanup")
    if cleanup is not None:
        rows["worker: remove the task's temp folder (off path)"] = _ms(cleanup["end"] - cleanup["start"])
    return rows


def print_table(title: str, tasks: list[dict[str, float]]) -> None:
    """The median of each stage over ``tasks`` (stages missing from some tasks: over those that have it)."""
    print(f"\n{title} (median of {len(tasks)} tasks)")
    names: list[str] = []
    for rows in tasks:
        for name in rows:
            if name not in names:
                names.append(name)
    width = max((len(n) for n in names), default=10)
    print(f"  {'stage':<{width}}  {'ms':>8}")
    for name in names:
        values = [rows[name] for rows in tasks if name in rows]
        print(f"  {name:<{width}}  {statistics.median(values):8.2f}")
