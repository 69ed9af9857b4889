"""The remote CLI's argument handling and exit codes, without a server (a real closed port)."""

from __future__ import annotations

import socket
from pathlib import Path

import click
from click.testing import CliRunner

from visionatrix.cli import main
from visionatrix.cli.errors import EXIT_CLIENT_ERROR, EXIT_UNREACHABLE


def _cli() -> click.Group:
    return main


def _closed_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_the_main_group_has_every_command() -> None:
    assert set(main.commands) == {"run", "create-user", "install-flow", "demo", "flows", "task"}
    assert set(main.commands["task"].commands) == {"run", "list", "show", "rm", "restart"}  # type: ignore[attr-defined]


def test_unreachable_server_exits_2_with_one_line() -> None:
    result = CliRunner().invoke(_cli(), ["task", "show", "1", "--server", _closed_url(), "--retries", "0"])
    assert result.exit_code == EXIT_UNREACHABLE
    assert result.stderr.startswith("error: cannot reach http://127.0.0.1:")
    assert result.stderr.count("\n") == 1


def test_server_comes_from_the_environment() -> None:
    env = {"VISIONATRIX_API_URL": _closed_url()}
    result = CliRunner().invoke(_cli(), ["flows", "--retries", "0"], env=env)
    assert result.exit_code == EXIT_UNREACHABLE
    assert env["VISIONATRIX_API_URL"] in result.stderr


def test_unreadable_file_input_exits_1_naming_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.png"
    args = ["task", "run", "invert_image", "--file", f"input_image={missing}", "--server", _closed_url()]
    result = CliRunner().invoke(_cli(), args)
    assert result.exit_code == EXIT_CLIENT_ERROR
    assert str(missing) in result.stderr


def test_malformed_input_is_a_usage_error() -> None:
    result = CliRunner().invoke(_cli(), ["task", "run", "invert_image", "--input", "no-equals-sign"])
    assert result.exit_code == 2
    assert "expected KEY=VALUE" in result.stderr
