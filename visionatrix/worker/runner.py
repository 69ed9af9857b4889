"""Run one claimed task: fetch its inputs, run the graph, keep the lease alive, upload results."""

from __future__ import annotations

import base64
import logging
import mimetypes
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

from visionatrix.client import Client
from visionatrix.engine.compiled import OPTION as COMPILE_OPTION
from visionatrix.engine.context import ModelStore, RunEnv
from visionatrix.engine.executor import run_graph
from visionatrix.engine.nodes.remote_vae import endpoints_from as remote_vae_endpoints
from visionatrix.errors import Cancelled, ModelMissing, VixError
from visionatrix.llm import settings as llm_settings
from visionatrix.worker.heartbeat import Heartbeat
from visionatrix.worker.stages import StageClock

log = logging.getLogger(__name__)


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
    clock: StageClock | None = None,
    compile_mode: str | None = None,
) -> str:
    """Run ``task`` to the end and report it: returns 'completed' or 'failed'.

    The task's own failure (a node error) is reported to the server as its error. What is not the
    task's fault raises, for the caller to decide: ``Cancelled`` (``cancel`` was set: deleted, or
    the worker is stopping), ``ModelMissing`` (a model file is not on this machine), ``NotFound``
    (the task is gone from the server), another ``ClientError`` (the server is failing).
    """
    task_id = int(task["task_id"])
    clock = clock or StageClock(task_id)
    root = Path(tempfile.mkdtemp(prefix=f"vix-task-{task_id}-"))
    try:
        with clock.span("inputs"):
            input_dir = _fetch_inputs(client, task, root / "input")
        env = RunEnv(
            models=models,
            input_dir=input_dir,
            output_dir=_mkdir(root / "output"),
            tmp_dir=_mkdir(root / "tmp"),
            on_progress=clock.node_progress,
            cancel=cancel,
            device=device,
            precision=precision,
            options=_options(task, compile_mode),
        )
        # beat well inside the server's lease (when it says), so a slow node never loses its claim
        every = min(heartbeat_every, float(task.get("lease_seconds") or heartbeat_every) / 3)
        with Heartbeat(client, task_id, details, cancel, every) as beat:
            env.on_overall = beat.update
            try:
                with clock.span("graph"):
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
        # the upload is the last progress report too: it stores the results and the run's time
        with clock.span("results"):
            files = _result_files(task_id, outputs)
            client.upload_results(task_id, files, details, execution_time=beat.elapsed)
    finally:
        with clock.span("cleanup"):
            shutil.rmtree(root, ignore_errors=True)
    return "completed"


def _options(task: dict[str, Any], compile_mode: str | None) -> dict[str, Any]:
    options: dict[str, Any] = {
        "llm": llm_settings.for_run(task.get("llm_settings"), os.environ),
        "remote_vae": remote_vae_endpoints(dict(os.environ)),
    }
    if compile_mode:
        options[COMPILE_OPTION] = compile_mode
    return options


def _fail(client: Client, task_id: int, message: str, elapsed: float, details: dict[str, Any]) -> str:
    log.info("task failed: %s", message, extra={"action": "task_failed", "task_id": task_id})
    client.report_progress(task_id, 0.0, elapsed, message or "task failed", details)
    return "failed"


def _fetch_inputs(client: Client, task: dict[str, Any], folder: Path) -> Path:
    folder.mkdir(parents=True)
    for index, item in enumerate(task.get("input_files") or []):
        name = Path(item["file_name"]).name
        inline = item.get("content_base64")  # a small file the server sent with the claim
        content = base64.b64decode(inline) if inline else client.task_input(int(task["task_id"]), index)
        (folder / name).write_bytes(content)
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
