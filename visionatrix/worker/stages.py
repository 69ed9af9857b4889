"""Where one task's time goes in the worker: named wall-clock spans and the HTTP calls it made.

The runner opens a span per stage (inputs, each graph node, results). With a ``CallLog`` on the
worker's client, every call is kept with its round trip and the server's own share of it (the
``Server-Timing`` header each answer carries), so a profile tells the network, the server and the
worker apart. The loop writes one record per task: to the debug log, and as a JSON line to the
file ``VIX_STAGE_LOG`` names (the overhead benchmarks read it).
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

log = logging.getLogger(__name__)

_START = "vix_started"  # where a request's send time rides between the two hooks


@dataclass
class Span:
    name: str
    start: float  # time.time()
    end: float


@dataclass
class Call:
    method: str
    path: str
    start: float  # time.time() when sent
    seconds: float  # until the answer's headers arrived
    server_ms: float | None  # the server's own time (Server-Timing), None when it did not say
    task_id: int | None = None  # where the URL names one (inputs, results, lock)


class CallLog:
    """The worker client's recent calls, filled by httpx event hooks (any thread)."""

    def __init__(self, keep: int = 2000) -> None:
        self._calls: deque[Call] = deque(maxlen=keep)
        self._lock = threading.Lock()

    def event_hooks(self) -> dict[str, list[Any]]:
        return {"request": [self._sent], "response": [self._answered]}

    def _sent(self, request: httpx.Request) -> None:
        request.extensions[_START] = time.time()

    def _answered(self, response: httpx.Response) -> None:
        request = response.request
        start = request.extensions.get(_START)
        if start is None:
            return
        named = request.url.params.get("task_id", "")
        call = Call(
            request.method,
            request.url.path,
            start,
            time.time() - start,
            server_millis(response.headers.get("server-timing")),
            int(named) if named.isdigit() else None,
        )
        with self._lock:
            self._calls.append(call)

    def between(self, start: float, end: float, task_id: int | None = None) -> list[Call]:
        """Calls sent in [start, end]; with ``task_id``, not those naming another task (a slot
        beside this one makes its own calls in the same time)."""
        with self._lock:
            return [
                c
                for c in self._calls
                if start <= c.start <= end and (task_id is None or c.task_id in (None, task_id))
            ]


@dataclass
class StageClock:
    """The spans of one task, from its claim to its results stored."""

    task_id: int
    flow: str = ""
    spans: list[Span] = field(default_factory=list)
    _nodes: dict[str, list[float]] = field(default_factory=dict)  # node id -> [start, end]

    @contextlib.contextmanager
    def span(self, name: str) -> Iterator[None]:
        start = time.time()
        try:
            yield
        finally:
            self.spans.append(Span(name, start, time.time()))

    def add(self, name: str, start: float, end: float) -> None:
        self.spans.append(Span(name, start, end))

    def node_progress(self, node_id: str, fraction: float) -> None:
        """Per-node progress: a node's span runs from its first 0.0 (the executor's, before it
        runs) to its last 1.0 (the executor's, after it ran); a node's own reports fall between."""
        now = time.time()
        if fraction <= 0.0:
            self._nodes.setdefault(node_id, [now, now])
        elif fraction >= 1.0 and node_id in self._nodes:
            self._nodes[node_id][1] = now

    def record(self, outcome: str, calls: CallLog | None = None) -> dict[str, Any]:
        for node_id, (begin, end) in sorted(self._nodes.items(), key=lambda item: item[1][0]):
            if end > begin:
                self.add(f"node {node_id}", begin, end)
        self._nodes.clear()
        self.spans.sort(key=lambda s: s.start)
        start = min((s.start for s in self.spans), default=time.time())
        end = max((s.end for s in self.spans), default=start)
        return {
            "task_id": self.task_id,
            "flow": self.flow,
            "outcome": outcome,
            "spans": [asdict(s) for s in self.spans],
            "calls": [asdict(c) for c in calls.between(start, end, self.task_id)] if calls else [],
        }


def server_millis(header: str | None) -> float | None:
    """The ``app`` duration of a Server-Timing header, in ms; None when absent or unreadable."""
    for metric in (header or "").split(","):
        name, _, params = metric.strip().partition(";")
        if name.strip() != "app":
            continue
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip() == "dur":
                try:
                    return float(value)
                except ValueError:
                    return None
    return None


_WRITING = threading.Lock()  # a worker's slots write whole lines, one at a time


def write_record(record: dict[str, Any], path: Path | None) -> None:
    spans = ", ".join(f"{s['name']} {(s['end'] - s['start']) * 1000:.1f} ms" for s in record["spans"])
    log.debug("task %s stages: %s", record["task_id"], spans, extra={"action": "task_stages"})
    if path is not None:
        line = json.dumps(record) + "\n"
        with _WRITING, open(path, "a", encoding="utf-8") as out:
            out.write(line)
