"""A newcomer's first hour: the README's first command in a fresh copy of the repository, the setup
steps it prints (and a failing one), the banner once the server is up, the not-installed error
that says how to install, and ``visionatrix demo`` making a flow run on tiny models.

The fresh copy reuses this test run's virtual environment (``VIX_VENV``, which scripts/setup
honours) so that the test takes seconds, not a 1.5 GB install; setup still runs its stamp check
and prints it, and the copy's own code runs (``PYTHONPATH``; checked below). The install steps
themselves run in ``test_a_failing_setup_step_shows_its_log``, in a new environment, up to the
step that fails.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.support import ROOT, Server, base_env, free_port, wait_for
from visionatrix.testing.tiny_models import write_tiny_models

VENV = Path(sys.prefix)
STAMP = f".installed-{hashlib.sha256((ROOT / 'pyproject.toml').read_bytes()).hexdigest()[:16]}"
# bounds for a loaded 2-core machine, not timings under test
BANNER_BOUND = 180.0
STOP_BOUND = 60.0


def _tracked_files() -> list[str]:
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"the fresh copy is made from the git checkout, and this is none: {exc}")
    return [name for name in listed.stdout.decode().split("\0") if name and (ROOT / name).is_file()]


@pytest.fixture
def fresh_copy(tmp_path: Path) -> Path:
    """What `git clone` would give: the repository's files, nothing built, nothing generated."""
    if not list(VENV.glob(f"{STAMP}-worker*")):
        pytest.skip(f"{VENV} was not made by scripts/setup for this pyproject.toml")
    copy = tmp_path / "visionatrix"
    for name in _tracked_files():
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, copy / name)
    return copy


def _newcomer_env(copy: Path, **extra: str) -> dict[str, str]:
    drop = ("VIX_", "WORKER_AUTH", "DATABASE_URI", "BASE_DATA_DIR", "MODELS_DIR", "PYTHONPATH", "PIP_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update({"VIX_VENV": str(VENV), "PYTHONPATH": str(copy), **extra})
    return env


@pytest.fixture
def serving(fresh_copy: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`scripts/serve` as the README says, from the copy's root, in a session of its own."""
    port = free_port()
    log = open(fresh_copy / "serve.log", "wb")
    proc = subprocess.Popen(
        ["scripts/serve", "--port", str(port)],
        cwd=fresh_copy,
        env=_newcomer_env(fresh_copy),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    proc.port = port  # type: ignore[attr-defined]
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _output(copy: Path) -> str:
    return (copy / "serve.log").read_text(errors="replace")


def _banner(proc: subprocess.Popen[bytes], copy: Path) -> list[str]:
    deadline = time.monotonic() + BANNER_BOUND
    while time.monotonic() < deadline and proc.poll() is None:
        found = re.search(r"\n(-{20,})\n(Visionatrix .*?)\n\1\n", _output(copy), re.S)
        if found:
            return found.group(2).splitlines()
        time.sleep(0.2)
    raise AssertionError(f"no banner (exit code {proc.poll()}):\n{_output(copy)[-4000:]}")


def _row(lines: list[str], label: str) -> str:
    rows = [line.split(maxsplit=1)[1] for line in lines if line.split()[:1] == [label]]
    assert len(rows) == 1, f"one '{label}' row expected in:\n" + "\n".join(lines)
    return rows[0]


def test_the_readme_first_command_in_a_fresh_copy(fresh_copy: Path, serving: subprocess.Popen[bytes]) -> None:
    code = subprocess.run(
        [VENV / "bin" / "python", "-c", "import visionatrix; print(visionatrix.__file__)"],
        env=_newcomer_env(fresh_copy),
        cwd=fresh_copy.parent,
        capture_output=True,
        text=True,
    )
    assert code.stdout.startswith(str(fresh_copy)), f"the copy's code must run, not {code.stdout}"
    lines = _banner(serving, fresh_copy)
    port = serving.port  # type: ignore[attr-defined]
    output = _output(fresh_copy)
    assert "setup: " in output.split("Visionatrix 0.")[0] and "up to date" in output, output
    url = f"http://localhost:{port}"
    assert lines[0].endswith(f" is up at {url}/"), lines
    assert _row(lines, "mode") == "DEFAULT (no authentication)"
    assert _row(lines, "database") == f"SQLite file {fresh_copy / 'visionatrix.db'}"
    assert _row(lines, "data") == str(fresh_copy / "vix_data")
    assert _row(lines, "models") == str(fresh_copy / "vix_models")
    assert _row(lines, "flows") == "none installed yet"
    assert _row(lines, "workers").startswith("1 local worker")
    steps = "\n".join(lines[lines.index("Next:") :])
    for hint in (
        f"{url}/docs",
        "scripts/serve demo",
        "scripts/serve install-flow NAME",
        "scripts/serve flows",
    ):
        assert hint in steps, steps
    # the banner's words hold: the URL answers, its docs are there, the database and worker are real
    assert httpx.get(f"http://127.0.0.1:{port}/docs", timeout=10).status_code == 200
    assert httpx.get(f"http://127.0.0.1:{port}/vapi/flows/installed", timeout=10).json() == []
    assert (fresh_copy / "visionatrix.db").is_file()
    deadline = time.monotonic() + BANNER_BOUND
    while "worker started" not in _output(fresh_copy) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "worker started" in _output(fresh_copy), _output(fresh_copy)[-3000:]
    os.killpg(serving.pid, signal.SIGINT)  # Ctrl+C in the terminal: the whole foreground group
    assert serving.wait(timeout=STOP_BOUND) == 0, _output(fresh_copy)[-3000:]
    assert "Traceback" not in _output(fresh_copy)


def test_scripts_serve_forwards_commands(fresh_copy: Path) -> None:
    env = _newcomer_env(fresh_copy)
    done = subprocess.run(
        ["scripts/serve", "demo", "--help"], cwd=fresh_copy, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "Usage: visionatrix demo" in done.stdout and "tiny random models" in done.stdout
    assert "up to date" in done.stderr, "setup's line goes to stderr, the command's output stays clean"
    ran = subprocess.run(["scripts/serve", "--help"], cwd=fresh_copy, env=env, capture_output=True, text=True)
    assert ran.returncode == 0 and "Usage: visionatrix run" in ran.stdout, ran.stderr


def test_a_failing_setup_step_shows_its_log(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    env = _newcomer_env(
        ROOT,
        VIX_VENV=str(venv),
        # no package index answers, and no pip.conf or PIP_FIND_LINKS points elsewhere: pip, already
        # in the new environment, stays; torch cannot be found
        PIP_CONFIG_FILE=os.devnull,
        PIP_INDEX_URL="http://127.0.0.1:9/simple",
        PIP_RETRIES="0",
        PIP_TIMEOUT="2",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
    )
    done = subprocess.run([ROOT / "scripts" / "setup"], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 1, done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert re.fullmatch(r"\[1/4\] Python virtual environment \.\.\. done \(\d+s\)", lines[1]), lines
    assert re.fullmatch(r"\[2/4\] pip itself \.\.\. done \(\d+s\)", lines[2]), lines
    failed = f"FAILED after \\d+s; the end of {re.escape(str(venv / 'setup.log'))}:"
    assert re.fullmatch(r"\[3/4\] PyTorch .* \.\.\. " + failed, lines[3]), lines
    # the log's end, indented, names what pip could not find
    assert any(line.startswith("    ") and "torch" in line for line in lines[4:]), done.stderr
    assert "[4/4]" not in done.stderr and not list(venv.glob(".installed-*"))
    assert "==> [3/4]" in (venv / "setup.log").read_text()


@pytest.fixture
def bare_server(tmp_path: Path, sqlite_url: str) -> Iterator[Server]:
    server = Server(tmp_path, sqlite_url, HF_HUB_OFFLINE="1")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_a_flow_not_installed_says_how_to_install_it(bare_server: Server, tmp_path: Path) -> None:
    write_tiny_models(
        tmp_path / "models", flows=["remove_background_birefnet_lite", "remove_background_birefnet"]
    )
    image = io.BytesIO()
    Image.new("RGB", (32, 24), "white").save(image, "PNG")
    with bare_server.client() as http:
        for name in ("remove_background_birefnet_lite", "remove_background_birefnet"):
            refused = http.put(
                f"/vapi/tasks/create/{name}", files={"input_image": ("a.png", image.getvalue())}
            )
            assert refused.status_code == 404, refused.text
            detail = refused.json()["detail"]
            assert (
                f"`visionatrix install-flow {name}`" in detail
                and f"`POST /vapi/flows/flow?name={name}`" in detail
            )
        # each way the message names works
        assert (
            http.post("/vapi/flows/flow", params={"name": "remove_background_birefnet_lite"}).status_code
            == 200
        )
        command = re.search(r"`visionatrix (install-flow \S+)`", detail)
        assert command is not None
        installed = subprocess.run(
            [sys.executable, "-m", "visionatrix", *command.group(1).split()],
            env=bare_server.env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
        )
        assert installed.returncode == 0, installed.stderr
        names = {flow["name"] for flow in http.get("/vapi/flows/installed").json()}
        assert names == {"remove_background_birefnet_lite", "remove_background_birefnet"}


def _demo(env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "visionatrix", "demo"], env=env, cwd=cwd, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_demo_makes_flows_run_on_tiny_models(tmp_path: Path, sqlite_url: str) -> None:
    env = base_env(tmp_path, sqlite_url, HF_HUB_OFFLINE="1")
    first = _demo(env, tmp_path)
    assert "RANDOM weights" in first and "NOISE images" in first
    for index, name in enumerate(
        ("sdxl_lighting", "remove_background_birefnet", "remove_background_birefnet_lite"), 1
    ):
        assert re.search(
            rf"^\[{index}/3\] {name}: wrote \d tiny model file\(s\), .*; installed", first, re.M
        ), first
    checkpoint = tmp_path / "models" / "checkpoints" / "sdxl_lightning_4step.safetensors"
    written = checkpoint.stat().st_mtime_ns
    again = _demo(env, tmp_path)
    assert "[1/3] sdxl_lighting: kept 2 already in place; installed" in again, again
    assert checkpoint.stat().st_mtime_ns == written, "a model file in place is never overwritten"
    server = Server(tmp_path, sqlite_url, HF_HUB_OFFLINE="1")
    server.start()
    try:
        with server.client() as http:
            names = {flow["name"] for flow in http.get("/vapi/flows/installed").json()}
            assert names == {"sdxl_lighting", "remove_background_birefnet", "remove_background_birefnet_lite"}
            created = http.put("/vapi/tasks/create/sdxl_lighting", data={"prompt": "a lighthouse"})
            assert created.status_code == 200, created.text
            task = wait_for(created.json()["tasks_ids"][0], http, timeout=300)
            assert task["status"] == "completed" and not task["error"], task
            output = task["outputs"][0]["comfy_node_id"]
            result = http.get("/vapi/tasks/results", params={"task_id": task["task_id"], "node_id": output})
            assert result.status_code == 200
            assert Image.open(io.BytesIO(result.content)).size[0] > 0
    finally:
        server.stop()
