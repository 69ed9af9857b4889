"""How soon a created task is claimed by an idle worker: long poll vs. a sleep-loop poller.

Both run in this process against one real server (uvicorn subprocess, SQLite) in the same run:
the baseline asks every second without waiting (a classic polling worker); ours long-polls.
Prints the median create→claim latency of each and their ratio.

    python benchmarks/claim_latency.py [--tasks 15]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support import FLOWS, Server, png_bytes  # noqa: E402
from visionatrix.client import Client  # noqa: E402

DETAILS = {"worker_id": "bench", "system": {"hostname": "bench"}}


def _measure(server: Server, tasks: int, long_poll: bool) -> list[float]:
    latencies: list[float] = []
    with Client(server.url) as client:
        for _ in range(tasks):
            claimed = threading.Event()
            got: list[float] = []

            def poll(claimed: threading.Event = claimed, got: list[float] = got) -> None:
                while not claimed.is_set():
                    task = client.next_task(DETAILS, ["invert_image"], wait=30 if long_poll else 0)
                    if task is not None:
                        got.append(time.perf_counter())
                        claimed.set()
                        return
                    if not long_poll:
                        time.sleep(1.0)

            thread = threading.Thread(target=poll)
            thread.start()
            time.sleep(0.3 + (len(latencies) % 5) * 0.17)  # the worker is idle, mid-wait
            created = time.perf_counter()
            client.create_task("invert_image", files={"input_image": png_bytes()})
            thread.join()
            latencies.append(got[0] - created)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp), f"sqlite:///{tmp}/bench.db", local_workers=0)
        server.start()
        try:
            server.install(FLOWS / "invert_image.json")
            baseline = statistics.median(_measure(server, args.tasks, long_poll=False))
            ours = statistics.median(_measure(server, args.tasks, long_poll=True))
        finally:
            server.stop()
    print(f"sleep-loop poller (1 s): median create->claim {baseline * 1000:8.1f} ms")
    print(f"long poll              : median create->claim {ours * 1000:8.1f} ms")
    print(f"ratio baseline/ours    : {baseline / ours:8.1f}x")


if __name__ == "__main__":
    main()
