"""Commands that drive a (possibly remote) Visionatrix server through the SDK: ``flows`` and ``task ...``.

``register(group)`` attaches them to the main click group, whose one error handler
(``cli/errors.py``) turns a failure into one line on stderr and an exit code.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import httpx
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from visionatrix.client import Client, ClientError, Forbidden, ServiceUnavailable, Timeout, Unauthorized

DEFAULT_SERVER = "http://localhost:8288"
# nothing listening (or no route) should be said within seconds, not after the retries' backoff
CONNECT_PROBE_SECONDS = 2.5
_CREDENTIALS_HINT = "pass --user and --password (or set VISIONATRIX_USERNAME and VISIONATRIX_PASSWORD)"

_stderr = Console(stderr=True)
_BAR_COLUMNS = (
    TextColumn("task {task.fields[task_id]}"),
    BarColumn(),
    TaskProgressColumn(),
    TimeElapsedColumn(),
)


def register(group: click.Group) -> None:
    """Add the ``flows`` command and the ``task`` group to ``group``."""
    group.add_command(flows)
    group.add_command(task)


# --- shared plumbing -------------------------------------------------------------------------------


def remote_command(func: Callable[..., None]) -> Callable[..., None]:
    """Give a command the server options and a connected Client."""

    @click.option("--server", envvar="VISIONATRIX_API_URL", default=DEFAULT_SERVER, show_default=True)
    @click.option("--user", envvar="VISIONATRIX_USERNAME", default=None, help="HTTP Basic user name")
    @click.option("--password", envvar="VISIONATRIX_PASSWORD", default=None, help="HTTP Basic password")
    @click.option("--retries", default=4, show_default=True, help="re-sends after network errors and 5xx")
    @functools.wraps(func)
    def wrapper(server: str, user: str | None, password: str | None, retries: int, **kwargs: Any) -> None:
        with Client(server, user, password, retries=retries) as client:
            _probe(client.base_url)
            try:
                func(client, **kwargs)
            except Unauthorized as exc:
                raise _with_hint(exc, user) from None

    return wrapper


def _probe(base_url: str) -> None:
    """Fail at once when no connection can be made. The retries are for a server that answered
    and then broke (a restart, a 5xx), not for an address where nothing listens."""
    try:
        with httpx.Client(timeout=httpx.Timeout(30.0, connect=CONNECT_PROBE_SECONDS)) as probe:
            probe.get(f"{base_url}/vapi/other/whoami").close()
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise ServiceUnavailable(
            f"cannot reach {base_url} ({type(exc).__name__}: {exc}): is the server running there? "
            "(--server or VISIONATRIX_API_URL)"
        ) from None
    except httpx.HTTPError:
        pass  # it answered, slowly or oddly: the command's own request (with its retries) will tell


def _with_hint(exc: Unauthorized, user: str | None) -> Unauthorized:
    hint = f"the server refused user {user!r}: check --user and --password" if user else _CREDENTIALS_HINT
    return Unauthorized(f"{exc.detail}; {hint}", exc.status_code, request=exc.request)


def _print_table(columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    """A table on a terminal; elsewhere (a pipe, a file) tab-separated lines with a header, whole
    and unpadded, for ``grep``, ``cut -f`` and spreadsheets."""
    console = Console()
    if console.is_terminal:
        table = Table(*columns)
        for row in rows:
            table.add_row(*row)
        console.print(table)
        return
    for row in (columns, *rows):
        click.echo("\t".join(" ".join(cell.split()) for cell in row))


def _pairs(values: tuple[str, ...], option: str) -> dict[str, str]:
    """``("key=value", ...)`` → dict; a value may itself contain '='."""
    pairs = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint=option)
        pairs[key] = value
    return pairs


def _readable_files(values: tuple[str, ...]) -> dict[str, Path]:
    """``--file`` values as paths, each opened once here: a local file that cannot be read is
    said before anything is asked of the server (an OSError: exit 1, naming the file)."""
    paths = {key: Path(value) for key, value in _pairs(values, "--file").items()}
    for path in paths.values():
        path.open("rb").close()
    return paths


# --- flows -----------------------------------------------------------------------------------------


@click.command()
@remote_command
def flows(client: Client) -> None:
    """List the installed flows and those the server can install."""
    installed = client.flows()
    try:
        available = client.flows_available()
    except (Unauthorized, Forbidden):  # listing the catalog is for admins; the installed list still helps
        _stderr.print("[dim]not an admin: showing installed flows only[/dim]")
        available = []
    except ServiceUnavailable:
        raise
    except ClientError as exc:  # the installed half is still worth showing
        _stderr.print(f"[yellow]could not list the flows available to install: {exc}[/yellow]")
        available = []
    rows = []
    for flow, is_installed in [(f, True) for f in installed] + [(f, False) for f in available]:
        runs = is_installed or flow.get("runnable", True)  # a server without the field runs its catalog
        rows.append(
            (
                str(flow.get("name", "")),
                str(flow.get("display_name", "")),
                str(flow.get("version", "")),
                "yes" if is_installed else "no",
                "yes" if runs else "no",
                "; ".join(flow.get("unsupported_reasons") or []),
            )
        )
    _print_table(("Name", "Display name", "Version", "Installed", "Runs here", "Why not"), rows)


# --- task ------------------------------------------------------------------------------------------


@click.group()
def task() -> None:
    """Create, follow and manage tasks."""


@task.command("run")
@remote_command
@click.argument("flow")
@click.option(
    "--input",
    "inputs",
    multiple=True,
    metavar="KEY=VALUE",
    callback=lambda _ctx, _param, values: _pairs(values, "--input"),  # checked before the server is asked
    help="a text input of the flow",
)
@click.option(
    "--file",
    "files",
    multiple=True,
    metavar="KEY=PATH",
    callback=lambda _ctx, _param, values: _readable_files(values),
    help="a file input of the flow",
)
@click.option("--seed", type=int, default=None)
@click.option("--count", type=click.IntRange(min=1), default=None, help="tasks to create")
@click.option("--priority", type=click.IntRange(0, 15), default=None)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("."), show_default=True)
@click.option("--timeout", type=float, default=None, help="seconds to wait for all tasks (exit 3 after)")
def run_task(
    client: Client,
    flow: str,
    inputs: dict[str, str],
    files: dict[str, Path],
    seed: int | None,
    count: int | None,
    priority: int | None,
    out: Path,
    timeout: float | None,
) -> None:
    """Run FLOW, show its progress, save its results into --out and print their paths."""
    ids = client.create_task(flow, inputs, files, seed=seed, count=count, priority=priority)
    click.echo(f"created task{'s' if len(ids) > 1 else ''} {', '.join(map(str, ids))}", err=True)
    finished = _wait_all(client, ids, timeout)
    for task_id in ids:
        for result in client.results(task_id, finished[task_id]["outputs"]):
            click.echo(str(result.save(out)))


def _wait_all(client: Client, ids: list[int], timeout: float | None) -> dict[int, dict[str, Any]]:
    """Wait for every task with one live progress bar each; ``timeout`` bounds them all together."""
    end = None if timeout is None else time.monotonic() + timeout
    with Progress(*_BAR_COLUMNS, console=_stderr) as bars:
        rows = {task_id: bars.add_task("", total=100.0, task_id=task_id) for task_id in ids}
        finished = {}
        for task_id in ids:
            left = None if end is None else max(0.0, end - time.monotonic())
            follow = _bar_updater(bars, rows[task_id])
            try:
                finished[task_id] = client.wait(task_id, timeout=left, on_progress=follow)
            except Timeout:
                raise Timeout(task_id, timeout) from None  # the --timeout given, not what was left of it
        return finished


def _bar_updater(bars: Progress, row: TaskID) -> Callable[[dict[str, Any]], None]:
    shown = ""  # the warning last printed: each new one once, not at every update

    def follow(details: dict[str, Any]) -> None:
        nonlocal shown
        bars.update(row, completed=_pct(details))
        warning = str(details.get("warning") or "")
        if warning and warning != shown:
            bars.console.print(f"[yellow]task {details.get('task_id')} is waiting: {warning}[/yellow]")
        shown = warning

    return follow


def _pct(task_details: dict[str, Any]) -> float:
    try:
        return float(task_details.get("progress", 0.0))
    except (TypeError, ValueError):
        return 0.0


@task.command("list")
@remote_command
@click.option("--name", default=None, help="only tasks of this flow")
def list_tasks(client: Client, name: str | None) -> None:
    """List your tasks."""
    rows = []
    for task_id, details in sorted(client.tasks(name).items(), key=lambda item: int(item[0])):
        error = str(details.get("error") or "").strip().splitlines()
        rows.append(
            (
                str(task_id),
                str(details.get("name", "")),
                f"{_pct(details):.1f}%",
                error[0][:60] if error else "",
                str(details.get("created_at", "")),
            )
        )
    _print_table(("ID", "Flow", "Progress", "Error", "Created"), rows)


@task.command("show")
@remote_command
@click.argument("task_id", type=int)
def show_task(client: Client, task_id: int) -> None:
    """Print a task's details as JSON."""
    click.echo(json.dumps(client.progress(task_id), indent=2, sort_keys=True))


@task.command("rm")
@remote_command
@click.argument("task_id", type=int)
def remove_task(client: Client, task_id: int) -> None:
    """Delete a task and its files (a running task is cancelled)."""
    client.delete(task_id)
    click.echo(f"deleted task {task_id}")


@task.command("restart")
@remote_command
@click.argument("task_id", type=int)
@click.option("--force", is_flag=True, help="restart even a task that is still running")
def restart_task(client: Client, task_id: int, force: bool) -> None:
    """Queue a failed task again."""
    client.restart(task_id, force=force)
    click.echo(f"restarted task {task_id}")
