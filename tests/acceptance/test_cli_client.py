"""``python -m visionatrix flows | task ...`` as a subprocess against the real server; exit codes 0/1/2/3."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

from tests.support import ROOT, Server, free_port, png_bytes

GREEN = (10, 200, 30)
INVERTED = (245, 55, 225)


def vix(*args: str, url: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VISIONATRIX_")}
    env.update(VISIONATRIX_API_URL=url, PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]))
    command = [sys.executable, "-m", "visionatrix", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_task_run_saves_results_and_prints_their_paths(vix_server: Server, tmp_path: Path) -> None:
    photo = tmp_path / "photo.png"
    photo.write_bytes(png_bytes(GREEN))
    out = tmp_path / "out"
    result = vix("task", "run", "invert_image", "--file", f"input_image={photo}", "--out", str(out),
                 "--timeout", "60", url=vix_server.url, cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    paths = [Path(line) for line in result.stdout.splitlines()]
    assert len(paths) == 1 and paths[0].parent == out
    assert Image.open(io.BytesIO(paths[0].read_bytes())).convert("RGB").getpixel((3, 3)) == INVERTED
    assert "created task" in result.stderr


def test_task_list_show_rm(vix_server: Server, tmp_path: Path) -> None:
    photo = tmp_path / "photo.png"
    photo.write_bytes(png_bytes(GREEN))
    run = vix("task", "run", "invert_image", "--file", f"input_image={photo}", "--count", "2",
              "--out", str(tmp_path), url=vix_server.url, cwd=tmp_path)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert len(run.stdout.splitlines()) == 2
    task_id = run.stderr.split("created tasks ", 1)[1].split(",")[0]

    listing = vix("task", "list", "--name", "invert_image", url=vix_server.url, cwd=tmp_path)
    assert listing.returncode == 0 and "invert_image" in listing.stdout and "100.0%" in listing.stdout

    shown = vix("task", "show", task_id, url=vix_server.url, cwd=tmp_path)
    assert shown.returncode == 0
    details = json.loads(shown.stdout)
    assert (str(details["task_id"]), details["progress"]) == (task_id, 100.0)

    assert vix("task", "rm", task_id, url=vix_server.url, cwd=tmp_path).returncode == 0
    gone = vix("task", "show", task_id, url=vix_server.url, cwd=tmp_path)
    assert gone.returncode == 1
    assert "not found" in _one_error_line(gone).lower()


def test_flows_lists_the_installed_test_flow(vix_server: Server, tmp_path: Path) -> None:
    result = vix("flows", url=vix_server.url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if "invert_image" in line)
    assert "Invert image" in row and "1.0.0" in row and "yes" in row


def test_refusals_exit_1(vix_server: Server, tmp_path: Path) -> None:
    unknown = vix("task", "run", "no_such_flow", "--input", "prompt=x", url=vix_server.url, cwd=tmp_path)
    assert unknown.returncode == 1
    assert "no_such_flow" in _one_error_line(unknown)
    restart = vix("task", "restart", "999999", url=vix_server.url, cwd=tmp_path)
    assert restart.returncode == 1
    _one_error_line(restart)


def test_unreachable_server_exits_2(tmp_path: Path) -> None:
    result = vix("task", "list", "--retries", "1", url=f"http://127.0.0.1:{free_port()}", cwd=tmp_path)
    assert result.returncode == 2
    assert "cannot reach" in _one_error_line(result)


def test_timeout_exits_3_and_names_the_task(idle_server: Server, tmp_path: Path) -> None:
    photo = tmp_path / "photo.png"
    photo.write_bytes(png_bytes(GREEN))
    result = vix("task", "run", "invert_image", "--file", f"input_image={photo}", "--timeout", "0.5",
                 url=idle_server.url, cwd=tmp_path)  # fmt: skip
    assert result.returncode == 3
    assert "did not finish within 0.5 s" in _one_error_line(result)  # not the deadline's 0.49993
    assert result.stdout == ""


def test_flows_prints_whole_names_when_piped(vix_server: Server, tmp_path: Path) -> None:
    result = vix("flows", url=vix_server.url, cwd=tmp_path)  # stdout is a pipe: tab-separated lines
    assert result.returncode == 0, result.stderr
    header, *rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert header == ["Name", "Display name", "Version", "Installed", "Runs here", "Why not"]
    assert all(len(row) == len(header) and row == [cell.strip() for cell in row] for row in rows)
    assert {"remove_background_birefnet_lite", "playground_2_5_prometheus"} <= {row[0] for row in rows}
    assert "…" not in result.stdout


def test_missing_credentials_name_the_options_and_variables(tmp_path: Path, sqlite_url: str) -> None:
    server = Server(tmp_path, sqlite_url, mode="SERVER", VIX_ADMIN_PASSWORD="s3cret-pass")
    server.start()
    try:
        anonymous = _one_error_line(vix("flows", url=server.url, cwd=tmp_path))
        wrong = vix("task", "list", "--user", "admin", "--password", "nope", url=server.url, cwd=tmp_path)
        right = vix(
            "task", "list", "--user", "admin", "--password", "s3cret-pass", url=server.url, cwd=tmp_path
        )
    finally:
        server.stop()
    for hint in ("--user", "--password", "VISIONATRIX_USERNAME", "VISIONATRIX_PASSWORD"):
        assert hint in anonymous
    assert wrong.returncode == 1 and "refused user 'admin'" in _one_error_line(wrong)
    assert right.returncode == 0, right.stderr


def test_nothing_listening_is_said_without_the_retries(tmp_path: Path) -> None:
    """With 50 retries the backoff alone would take many minutes: a refused connection is not retried."""
    url = f"http://127.0.0.1:{free_port()}"
    result = vix("flows", "--retries", "50", url=url, cwd=tmp_path, timeout=60)
    assert result.returncode == 2
    line = _one_error_line(result)
    assert f"cannot reach {url}" in line and "is the server running" in line
