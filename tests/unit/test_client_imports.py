"""The SDK installs alone: importing it must not pull the server, the database or the model stack."""

from __future__ import annotations

import subprocess
import sys

from tests.support import ROOT

_BLOCKER = """
import sys

class Blocker:
    def find_spec(self, name, path=None, target=None):
        top = name.split(".")[0]
        inside = name.startswith("visionatrix.") and not name.startswith("visionatrix.client")
        if top in {"fastapi", "starlette", "sqlalchemy", "torch", "diffusers", "alembic"} or inside:
            raise ImportError(f"the client must not import {name}")
        return None

sys.meta_path.insert(0, Blocker())
import visionatrix.client as client
assert set(client.__all__) <= set(dir(client))
print("ok", len(client.__all__))
"""


def test_client_imports_with_only_httpx_and_stdlib() -> None:
    command = [sys.executable, "-c", _BLOCKER]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok ")
