"""Run one claimed task: fetch its inputs, run the graph, keep the lease alive, upload results."""

from __future__ import annotations

import logging
import mimetypes
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from visionatrix.client import Client, ClientError, NotFound
from visionatrix.engine.context import ModelStore, RunEnv
from visionatrix.engine.executor import run_graph
from visionatrix.errors import Cancelled, ModelMissing, VixError
from visionatrix.llm import settings as llm_settings

log = logging.getLogger(__name__)


class Heartbeat:
    """Reports progress from a side thread: the graph never waits on the network, and the lease
    is extended even while one long node (a VAE decode) reports nothing new."""

    def __init__(
        self, client: Client, task_id: int, details: dict[str, Any], cancel: threading.Event, every: float
    ):
        self.client = client
        self.task_id = task_id
        self.details = details
        self.cancel = cancel
        self.every = every
        self.started = time.monotonic()
        self.fraction = 0.0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"heartbeat-{task_id}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=30)

    def update(self, fraction: float) -> None:
        self.fraction = fraction
        self._wake.set()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def _loop(self) -> None:
        sent = -1.0
        while not self._stop.is_set():
            self._wake.wait(self.every)
            self._wake.clear()
            if self._stop.is_set():
                return
            percent = round(min(99.0, max(0.1, self.fraction * 100)), 1)
            try:
                self.client.report_progress(self.task_id, percent, self.elapsed, "", self.details)
                sent = percent
            except NotFound:
                log.info("task gone; cancelling", extra={"action": "task_cancelled", "task_id": self.task_id})
                self.cancel.set()
                return
            except ClientError as exc:
                # a network blip: the lease outlives a few missed beats
                log.warning("progress report failed: %s", exc, extra={"task_id": self.task_id, "sent": sent})
            time.sleep(0.2)  # coalesce bursts of per-step updates


def run_task(
    client: Client,
    task: dict[str, Any],
    models: ModelStore,
    details: dict[str, Any],
    cancel: threading.Event,
    *,
    device: str,
    precision: str,
    heartbeat_every: float,
) -> str:
    """Run ``task`` to the end and report it: returns 'completed' or 'failed'.

    The task's own failure (a node error) is reported to the server as its error. What is not the
    task's fault raises, for the caller to decide: ``Cancelled`` (``cancel`` was set: deleted, or
    the worker is stopping), ``ModelMissing`` (a model file is not on this machine), ``NotFound``
    (the task is gone from the server), another ``ClientError`` (the server is failing).
    """
    task_id = int(task["task_id"])
    with tempfile.TemporaryDirectory(prefix=f"vix-task-{task_id}-") as tmp:
        root = Path(tmp)
        env = RunEnv(
            models=models,
            input_dir=_fetch_inputs(client, task, root / "input"),
            output_dir=_mkdir(root / "output"),
            tmp_dir=_mkdir(root / "tmp"),
            cancel=cancel,
            device=device,
            precision=precision,
            options={"llm": llm_settings.for_run(task.get("llm_settings"), os.environ)},
        )
        # beat well inside the server's lease (when it says), so a slow node never loses its claim
        every = min(heartbeat_every, float(task.get("lease_seconds") or heartbeat_every) / 3)
        with Heartbeat(client, task_id, details, cancel, every) as beat:
            env.on_overall = beat.update
            try:
                outputs = run_graph(task["flow_comfy"], env)
            except (Cancelled, ModelMissing):
                raise
            except VixError as exc:
                return _fail(client, task_id, exc.message, beat.elapsed, details)
            except Exception as exc:  # any other engine failure must reach the user, not kill the worker
                log.exception("task crashed", extra={"task_id": task_id})
                return _fail(client, task_id, f"{type(exc).__name__}: {exc}", beat.elapsed, details)
            if cancel.is_set():
                raise Cancelled()
        client.report_progress(task_id, 99.0, beat.elapsed, "", details)
        client.upload_results(task_id, _result_files(task_id, outputs), details)
    return "completed"


def _fail(client: Client, task_id: int, message: str, elapsed: float, details: dict[str, Any]) -> str:
    log.info("task failed: %s", message, extra={"action": "task_failed", "task_id": task_id})
    client.report_progress(task_id, 0.0, elapsed, message or "task failed", details)
    return "failed"


def _fetch_inputs(client: Client, task: dict[str, Any], folder: Path) -> Path:
    folder.mkdir(parents=True)
    for index, item in enumerate(task.get("input_files") or []):
        name = Path(item["file_name"]).name
        (folder / name).write_bytes(client.task_input(int(task["task_id"]), index))
    return folder


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


def _result_files(task_id: int, outputs: dict[str, list[Path]]) -> list[tuple[str, bytes, str]]:
    files = []
    for node_id, paths in outputs.items():
        for index, path in enumerate(paths):
            ext = path.suffix.lstrip(".").lower() or "bin"
            mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            files.append((f"{task_id}_{node_id}_{index}.{ext}", path.read_bytes(), mime))
    return files
