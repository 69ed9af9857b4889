"""The lines ``visionatrix run`` prints once the server listens: where it is, what it holds, what next."""

from __future__ import annotations

import os
from collections.abc import Sequence

from visionatrix import __version__
from visionatrix.config import Config, Mode

# scripts/serve sets it: hints then name the command that works from the user's shell
CLI_ENV = "VIX_CLI"


def cli_command() -> str:
    return os.environ.get(CLI_ENV) or "visionatrix"


def public_url(config: Config) -> str:
    host = "localhost" if config.host in ("0.0.0.0", "::", "127.0.0.1") else config.host
    return f"http://{host}:{config.port}"


def banner(config: Config, flows: Sequence[str], local_workers: int) -> str:
    url, cli = public_url(config), cli_command()
    rows = [
        ("mode", _mode(config)),
        ("database", _database(config)),
        ("data", str(config.base_data_dir)),
        ("models", str(config.models_dir)),
        ("flows", ", ".join(flows) if flows else "none installed yet"),
        ("workers", _workers(config, local_workers)),
    ]
    lines = [f"Visionatrix {__version__} is up at {url}/", *(f"  {k:<9} {v}" for k, v in rows), "Next:"]
    lines += [f"  {hint}" for hint in _next_steps(config, url, cli, flows)]
    rule = "-" * max(len(line) for line in lines)
    return "\n".join([rule, *lines, rule])


def _database(config: Config) -> str:
    from sqlalchemy.engine import make_url

    url = make_url(config.database_url())
    if url.get_backend_name() == "sqlite":
        return f"SQLite file {url.database}"
    return url.render_as_string(hide_password=True)


def _mode(config: Config) -> str:
    if config.mode is Mode.SERVER:
        return "SERVER (HTTP Basic auth on every route)"
    return "DEFAULT (no authentication)"


def _workers(config: Config, local_workers: int) -> str:
    if config.mode is Mode.DEFAULT and local_workers:
        return f"{local_workers} local worker{'s' if local_workers > 1 else ''}, starting now"
    return "none here; start one: visionatrix run --mode WORKER --server URL (WORKER_AUTH=user:password)"


def _next_steps(config: Config, url: str, cli: str, flows: Sequence[str]) -> list[str]:
    steps = [("web UI", f"{url}/   (API docs: {url}/docs)")]
    if flows:
        steps.append(("run a task", _example_task(config, cli, flows)))
    else:
        steps.append(("try it", f"{cli} demo   (no downloads: tiny random models, the images are noise)"))
    steps.append(("list flows", f"{cli} flows"))
    steps.append(("add a flow", f"{cli} install-flow NAME   (or in the web UI's catalog)"))
    if config.mode is Mode.DEFAULT:
        steps.append(("stop", "Ctrl+C"))
    return [f"{label + ':':<12}{text}" for label, text in steps]


def _example_task(config: Config, cli: str, flows: Sequence[str]) -> str:
    login = " --user NAME --password PASSWORD" if config.mode is Mode.SERVER else ""
    if "sdxl_lighting" in flows:
        return f"{cli} task run sdxl_lighting{login} --input prompt='a lighthouse at dusk'"
    return f"{cli} task run {flows[0]}{login} --input KEY=VALUE --file KEY=PATH   (inputs: /docs)"
