"""How soon a client sees a task's new progress: the event stream (SSE) vs. polling once a second.

One real server (uvicorn subprocess, SQLite) in the same run; this process plays the worker over
the worker API and reports progress at random moments. The baseline client polls the progress
route every second (the SDK's default interval); ours reads GET /vapi/tasks/events. A second
server process on the same database shows the cross-process case (a bounded 1 s re-check).
Prints the median report→seen latency of each and the ratio.

    python benchmarks/progress_latency.py [--reports 15]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support import FLOWS, Server, png_bytes  # noqa: E402
from visionatrix.client._sse import EventParser  # noqa: E402

WORKER = {"worker_details": {"worker_id": "bench", "system": {"hostname": "bench"}}}


def _claimed_task(http: httpx.Client) -> int:
    created = http.put("/vapi/tasks/create/invert_image", files={"input_image": ("a.png", png_bytes())})
    task_id = int(created.json()["tasks_ids"][0])
    http.post("/vapi/tasks/next", json={**WORKER, "tasks_names": ["invert_image"]}).raise_for_status()
    return task_id


def _report(http: httpx.Client, task_id: int, progress: float) -> float:
    http.put("/vapi/tasks/progress", json={**WORKER, "task_id": task_id, "progress": progress})
    return time.perf_counter()


def _watch_by_polling(url: str, task_id: int, seen: dict[float, float], stop: threading.Event) -> None:
    with httpx.Client(base_url=url) as http:
        while not stop.is_set():
            progress = http.get(f"/vapi/tasks/progress/{task_id}").json()["progress"]
            seen.setdefault(progress, time.perf_counter())
            stop.wait(1.0)


def _watch_by_events(url: str, task_id: int, seen: dict[float, float], stop: threading.Event) -> None:
    parser = EventParser()
    with httpx.Client(base_url=url, timeout=60) as http:
        with http.stream("GET", "/vapi/tasks/events", params={"task_id": task_id}) as response:
            for line in response.iter_lines():
                event = parser.feed(line)
                if event is not None and event.event == "task":
                    seen.setdefault(json.loads(event.data)["progress"], time.perf_counter())
                if stop.is_set():
                    return


def _measure(server: Server, watch_url: str, reports: int, watcher) -> list[float]:  # type: ignore[no-untyped-def]
    with server.client() as http:
        task_id = _claimed_task(http)
        seen: dict[float, float] = {}
        stop = threading.Event()
        thread = threading.Thread(target=watcher, args=(watch_url, task_id, seen, stop), daemon=True)
        thread.start()
        time.sleep(1.0)
        latencies = []
        for i in range(reports):
            time.sleep(random.uniform(0.3, 1.3))
            progress = float(i + 1)
            reported = _report(http, task_id, progress)
            while progress not in seen:
                time.sleep(0.002)
            latencies.append(max(0.0, seen[progress] - reported))
        stop.set()
        _report(http, task_id, 99.0)  # wakes the stream so its thread can end
        http.delete("/vapi/tasks/task", params={"task_id": task_id})
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reports", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = str(Path(tmp) / "data")
        one = Server(Path(tmp), f"sqlite:///{tmp}/bench.db", local_workers=0, BASE_DATA_DIR=data)
        (Path(tmp) / "two").mkdir()
        two = Server(Path(tmp) / "two", f"sqlite:///{tmp}/bench.db", local_workers=0, BASE_DATA_DIR=data)
        one.start()
        two.start()
        try:
            one.install(FLOWS / "invert_image.json")
            baseline = statistics.median(_measure(one, one.url, args.reports, _watch_by_polling))
            ours = statistics.median(_measure(one, one.url, args.reports, _watch_by_events))
            other = statistics.median(_measure(one, two.url, args.reports, _watch_by_events))
        finally:
            one.stop()
            two.stop()
    print(f"polling every 1 s            : median report->seen {baseline * 1000:8.1f} ms")
    print(f"event stream, same process   : median report->seen {ours * 1000:8.1f} ms")
    print(f"event stream, another process: median report->seen {other * 1000:8.1f} ms")
    print(f"ratio polling/stream (same)  : {baseline / ours:8.1f}x")


if __name__ == "__main__":
    main()
