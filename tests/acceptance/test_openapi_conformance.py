"""The OpenAPI description tells the truth (issue 7, point 9): schemathesis runs every check it
has (``--checks all``) over a few hundred generated requests against a real SERVER-mode server,
and finds nothing: no 5xx, no undocumented status, header or body, no ignored auth."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import FLOWS, Server

CONFIG = Path(__file__).with_name("schemathesis.toml")
ADMIN = ("admin", "conformance-pw")


def test_schemathesis_finds_no_failure(tmp_path: Path, sqlite_url: str) -> None:
    st = shutil.which("st", path=str(Path(sys.executable).parent))
    if st is None:
        pytest.fail("schemathesis is a dev dependency: run scripts/setup --dev")
    server = Server(
        tmp_path, sqlite_url, mode="SERVER", VIX_ADMIN_PASSWORD=ADMIN[1], VIX_LOGIN_MAX_FAILURES="100000"
    )
    server.start()
    try:
        server.install(FLOWS / "invert_image.json", auth=ADMIN)
        run = subprocess.run(
            [
                st, "--config-file", str(CONFIG), "run", f"{server.url}/openapi.json",
                "--auth", ":".join(ADMIN), "--checks", "all", "--max-examples", "8", "--seed", "7",
                "--workers", "1", "--no-color", "--generation-database", "none",
                "--phases", "examples,coverage,fuzzing,stateful", "--request-timeout", "70",
            ],
            capture_output=True,
            text=True,
            timeout=540,
            cwd=tmp_path,
        )  # fmt: skip
    finally:
        server.stop()
    summary = run.stdout[-6000:]
    assert run.returncode == 0, summary + run.stderr[-2000:]
    counted = re.search(r"(\d+) generated, (\d+) found", summary) or re.search(r"(\d+) generated", summary)
    assert counted is not None and "failure" not in summary.split("Test cases:")[-1], summary
    assert int(counted.group(1)) >= 200, f"only {counted.group(1)} cases ran:\n{summary}"
    assert server.alive() is False and "Traceback" not in server.log(), server.log()[-3000:]
