"""The WORKER-mode process: ``visionatrix run --mode WORKER``, and each of DEFAULT mode's local workers.

Start-up loads the node modules, picks the device, installs the stop handling (signals, and for a
local worker its server's death), then runs the loop until asked to stop.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import NoReturn

from visionatrix.config import Config
from visionatrix.worker.identity import default_worker_id

# set by the supervisor (worker/supervisor.py) for the local workers it starts
PARENT_PID_ENV = "VIX_PARENT_PID"
WORKER_INDEX_ENV = "VIX_WORKER_INDEX"


def run_worker(config: Config) -> NoReturn:
    """Pull and run tasks from ``config.server`` until stopped, then end the process (exit 0)."""
    # torch and the engine load here, in the worker only: the server never imports them
    from visionatrix.client import Client
    from visionatrix.engine import registry
    from visionatrix.engine.compiled import compile_mode as compile_mode_of
    from visionatrix.models.cache import ModelStore
    from visionatrix.models.device import choose_device, choose_precision
    from visionatrix.worker.loop import WorkerOptions, serve
    from visionatrix.worker.shutdown import Shutdown, stop_on_signals, stop_with_parent
    from visionatrix.worker.stages import CallLog

    shutdown = Shutdown()
    stop_on_signals(shutdown)
    if parent := os.environ.get(PARENT_PID_ENV):
        stop_with_parent(shutdown, int(parent))
    registry.load_modules(config.extra_node_modules())
    user, _, password = config.worker_auth.get_secret_value().partition(":")
    device = choose_device(config.device)
    compile_mode = compile_mode_of(config.compile)
    if compile_mode:
        # compiled kernels outlive the process: a restarted worker finds them instead of compiling
        os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(config.models_dir / ".cache" / "torch_compile"))
        os.environ.setdefault("TORCHINDUCTOR_FX_GRAPH_CACHE", "1")
        os.environ.setdefault("TORCHINDUCTOR_AUTOGRAD_CACHE", "1")
    if device.startswith("cuda"):
        import torch

        # every task of a flow has the same shapes: let cuDNN time its convolution kernels once
        torch.backends.cudnn.benchmark = True
    options = WorkerOptions(
        worker_id=_worker_id(user),
        models_dir=config.models_dir.resolve(),
        device=device,
        precision=choose_precision(device, config.precision),
        slots=config.worker_slots,
        compile=compile_mode,
        stage_log=config.stage_log,
        calls=CallLog() if config.stage_log else None,
    )
    budget = int(config.model_cache_gb * 2**30) or None
    hooks = options.calls.event_hooks() if options.calls else None
    try:
        with Client(config.server, user or None, password or None, timeout=60.0, event_hooks=hooks) as client:
            serve(client, ModelStore(options.models_dir, budget), options, shutdown)
    finally:
        shutdown.finished()
    _exit_now()


def _exit_now() -> NoReturn:
    """Skip the interpreter's teardown: with torch loaded it takes up to a second, and a stopping
    worker holds nothing that needs it (its task is back in the queue, its temp files are gone)."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _worker_id(user: str) -> str:
    worker_id = default_worker_id(user)
    if index := os.environ.get(WORKER_INDEX_ENV):
        worker_id += f":{index}"
    return worker_id
