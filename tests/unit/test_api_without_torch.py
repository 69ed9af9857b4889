"""The API process builds and serves with torch (and diffusers) impossible to import."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sys
for name in ("torch", "diffusers", "transformers", "onnxruntime"):
    sys.modules[name] = None  # any import of them now fails
from visionatrix.config import Config
from visionatrix.api.app import create_app
from visionatrix.engine import registry
app = create_app(Config())
classes = registry.known_classes()
assert {"LoadImage", "SaveImage", "KSampler", "RembgByBiRefNet", "CheckpointLoaderSimple"} <= classes, classes
print("ok", len(classes))
"""


def test_api_and_registry_import_without_torch() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok")
