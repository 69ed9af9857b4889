"""Nodes for tests, loaded into servers and workers through VIX_NODE_MODULES (the custom-node path).

``TestRecord`` appends a line to a file each time it runs (to count executions), then works for
``seconds`` in ``steps`` with progress and cancel checks, like a sampler loop (``steps=1``: one
long stretch with no cancel point, like a long native call). With ``model`` set it first needs
that file under ``MODELS_DIR/test_models`` (a missing one raises ``ModelMissing``, as a real
loader does). ``TestFlaky`` fails while a given file exists, like a node whose remote service is
down until someone fixes it.
"""

from __future__ import annotations

import os
import time

import numpy as np

from visionatrix.engine.registry import node


@node("TestRecord")
class TestRecord:
    def run(self, ctx, text: str, log_path: str, seconds: float = 0.0, steps: int = 10, model: str = ""):  # type: ignore[no-untyped-def]
        if model:
            ctx.models.path("test_models", model)
        with open(log_path, "a") as log:
            log.write(f"{text}\t{os.getpid()}\n")
        for step in range(steps):
            ctx.progress(step / steps)
            time.sleep(float(seconds) / steps)
        value = (sum(text.encode()) % 256) / 255.0
        return (np.full((1, 8, 8, 3), value, dtype=np.float32),)


@node("TestFlaky")
class TestFlaky:
    def run(self, ctx, image, broken_while: str):  # type: ignore[no-untyped-def]
        if os.path.exists(broken_while):
            raise RuntimeError(f"the service is down ({os.path.basename(broken_while)} exists)")
        ctx.progress(0.5)
        return (image,)
