"""Baselines the overhead benchmarks measure against in the same run.

- ``CogServer``: Replicate's Cog (PyPI ``cog``, its Rust server ``coglet``) serving the trivial job
  in ``cog_baseline/predict.py``, from a virtual environment of its own made on first use
  (``~/.cache/visionatrix-bench/cog-<version>``). Where it cannot be installed, the minimal
  synchronous FastAPI server in ``cog_baseline/sync_server.py`` stands in, and says so.
- ``source_tree``: the project as of an earlier commit (``git archive``), to run "before" servers.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
COG_VERSION = "0.23.1"
COG_DIR = HERE / "cog_baseline"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cog_venv(cache: Path) -> Path | None:
    """A venv with cog and Pillow (made once); None when pip cannot install them here."""
    venv = cache / f"cog-{COG_VERSION}"
    python = venv / "bin" / "python"
    if python.exists() and (venv / ".complete").exists():
        return venv
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", f"cog=={COG_VERSION}", "pillow"],
            check=True,
            capture_output=True,
            timeout=600,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    (venv / ".complete").touch()
    return venv


class CogServer:
    """A synchronous prediction server for the trivial job: Cog itself, or the FastAPI stand-in."""

    def __init__(self, workdir: Path, cache: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / "cog.log"
        self.venv = cog_venv(cache)
        self.name = f"Cog {COG_VERSION}" if self.venv else "FastAPI sync stand-in (Cog not installable)"
        self.proc: subprocess.Popen[bytes] | None = None
        self.http = httpx.Client(timeout=30)

    def start(self, timeout: float = 60) -> None:
        env = dict(os.environ, PORT=str(self.port))
        if self.venv is not None:
            # coglet runs the predictor in a child `python` found on PATH: the venv's
            env.update(PATH=f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}")
            env.update(COG_PREDICT_TYPE_STUB="predict.py:Predictor")
            cmd = [str(self.venv / "bin" / "python"), "-m", "cog.server.http", "--host", "127.0.0.1"]
        else:
            cmd = [
                sys.executable,
                "-m",
                "uvicorn",
                "sync_server:app",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
            ]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, cwd=COG_DIR, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.http.get(f"{self.url}/health-check").json().get("status") == "READY":
                    return
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not start:\n{self.log.read_text(errors='replace')[-2000:]}")

    def predict(self, png: bytes) -> float:
        """Seconds for one synchronous prediction, request to answer, as a client sees it."""
        body = {"input": {"image": "data:image/png;base64," + base64.b64encode(png).decode()}}
        start = time.perf_counter()
        answer = self.http.post(f"{self.url}/predictions", json=body)
        seconds = time.perf_counter() - start
        answer.raise_for_status()
        if answer.json().get("status") != "succeeded":
            raise RuntimeError(f"{self.name} prediction failed: {answer.text[:300]}")
        return seconds

    def stop(self) -> None:
        self.http.close()
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def source_tree(repo: Path, revision: str, dest: Path) -> Path | None:
    """The files of ``revision`` unpacked into ``dest``; None when git or the revision is missing."""
    try:
        archive = subprocess.run(
            ["git", "-C", str(repo), "archive", revision], check=True, capture_output=True
        ).stdout
        dest.mkdir(parents=True, exist_ok=True)
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return dest
