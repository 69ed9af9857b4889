"""The composition root: ``visionatrix run | create-user | install-flow`` plus the client commands.

The only module that wires config, server, worker and client together, and that configures logging.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import threading

import click

from visionatrix.config import Config, Mode, describe_environment
from visionatrix.errors import VixError

log = logging.getLogger("visionatrix")


def _configure_logging(verbose: int) -> None:
    level = logging.DEBUG if verbose > 1 else logging.INFO if verbose == 1 else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("visionatrix").setLevel(logging.DEBUG if verbose > 1 else logging.INFO)


def _env_help() -> str:
    rows = "\n".join(
        f"  {name:<20} {default or '-':<12} {text}" for name, default, text in describe_environment()
    )
    return (
        "Start Visionatrix.\n\n"
        "DEFAULT: server on localhost:8288 with one local worker, no auth. "
        "SERVER: API only, HTTP Basic auth. WORKER: pull tasks from --server.\n\n"
        "\b\nEnvironment (also read from a .env file):\n" + rows
    )


@click.group()
@click.option("-v", "--verbose", count=True, help="more log output (-vv for debug)")
def main(verbose: int) -> None:
    """Visionatrix: an AI flow server speaking the Visionatrix task API."""
    _configure_logging(verbose)


@main.command(help=_env_help())
@click.option("--mode", type=click.Choice([m.value for m in Mode], case_sensitive=False), default=None)
@click.option("--host", default=None, help="bind address (VIX_HOST)")
@click.option("--port", type=int, default=None, help="port (VIX_PORT)")
@click.option("--server", default=None, help="WORKER mode: the server URL (VIX_SERVER)")
@click.option(
    "--workers",
    "local_workers",
    type=int,
    default=None,
    help="DEFAULT mode: local workers (VIX_LOCAL_WORKERS)",
)
def run(
    mode: str | None, host: str | None, port: int | None, server: str | None, local_workers: int | None
) -> None:
    overrides = {"mode": mode and mode.upper(), "host": host, "port": port, "server": server}
    overrides["local_workers"] = local_workers
    config = Config(**{k: v for k, v in overrides.items() if v is not None})
    try:
        if config.mode is Mode.WORKER:
            sys.exit(_run_worker(config))
        _run_server(config)
    except VixError as exc:  # a start-up failure is one clear line, not a traceback
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(1)


def _run_server(config: Config) -> None:
    import uvicorn

    from visionatrix.api.app import create_app

    workers: list[_LocalWorker] = []
    if config.mode is Mode.DEFAULT:
        # the local worker reaches a wildcard or localhost bind over IPv4 loopback
        host = "127.0.0.1" if config.host in ("localhost", "0.0.0.0", "::") else config.host
        url = f"http://{host}:{config.port}"
        workers = [_LocalWorker(url, config, i) for i in range(config.local_workers)]
    app = create_app(config)
    server = _uvicorn_server_class()(
        uvicorn.Config(
            app, host=config.host, port=config.port, log_level="info", timeout_graceful_shutdown=10
        )
    )
    for worker in workers:
        worker.start_when_ready(server)
    try:
        server.run()
    finally:
        for worker in workers:
            worker.stop()


def _uvicorn_server_class() -> type:
    import uvicorn

    class Server(uvicorn.Server):
        """Ends open long polls as soon as a shutdown signal arrives, instead of waiting them out."""

        def handle_exit(self, sig: int, frame: object) -> None:
            services = getattr(self.config.app.state, "services", None)
            if services is not None:
                services.queue.stopping = True
            super().handle_exit(sig, frame)  # type: ignore[arg-type]

    return Server


class _LocalWorker:
    """DEFAULT mode's worker: the WORKER-mode process, pointed at this server, restarted if it dies."""

    def __init__(self, url: str, config: Config, index: int) -> None:
        self.url = url
        self.config = config
        self.index = index
        self.process: subprocess.Popen[bytes] | None = None
        self.stopping = threading.Event()

    def start_when_ready(self, server: object) -> None:
        threading.Thread(
            target=self._supervise, args=(server,), daemon=True, name=f"worker-{self.index}"
        ).start()

    def _supervise(self, server: object) -> None:
        while not getattr(server, "started", False):
            if self.stopping.wait(0.05):
                return
        while not self.stopping.is_set():
            env = {
                **os.environ,
                "VIX_MODE": "WORKER",
                "VIX_SERVER": self.url,
                "VIX_WORKER_INDEX": str(self.index),
            }
            self.process = subprocess.Popen([sys.executable, "-m", "visionatrix", "run"], env=env)
            code = self.process.wait()
            if not self.stopping.is_set():
                log.warning("local worker exited with %s; restarting", code)
                self.stopping.wait(1.0)

    def stop(self) -> None:
        self.stopping.set()
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def _run_worker(config: Config) -> int:
    from visionatrix.client import Client
    from visionatrix.engine import registry
    from visionatrix.models.cache import ModelStore
    from visionatrix.models.device import choose_device, choose_precision
    from visionatrix.worker.identity import default_worker_id
    from visionatrix.worker.loop import WorkerOptions, serve

    if not config.server:
        raise click.UsageError("WORKER mode needs --server URL (or VIX_SERVER)")
    registry.load_modules(config.extra_node_modules())
    user, _, password = config.worker_auth.get_secret_value().partition(":")
    device = choose_device(config.device)
    budget = int(config.model_cache_gb * 2**30) or None
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if os.environ.get("VIX_PARENT_PID"):
        _stop_with_parent(int(os.environ["VIX_PARENT_PID"]), stop)
    worker_id = default_worker_id(user)
    if os.environ.get("VIX_WORKER_INDEX"):
        worker_id += f":{os.environ['VIX_WORKER_INDEX']}"
    options = WorkerOptions(
        worker_id=worker_id,
        models_dir=config.models_dir.resolve(),
        device=device,
        precision=choose_precision(device, config.precision),
    )
    with Client(config.server, user or None, password or None, timeout=60.0) as client:
        serve(client, ModelStore(options.models_dir, budget), options, stop)
    return 0


def _stop_with_parent(parent: int, stop: threading.Event) -> None:
    """A local worker never outlives the server that started it, however that server ended."""

    def watch() -> None:
        while not stop.wait(1.0):
            if os.getppid() != parent:
                log.warning("server process %s is gone; local worker stopping", parent)
                stop.set()
                os._exit(0)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


@main.command("create-user")
@click.option("--name", required=True)
@click.option("--password", required=True)
@click.option("--admin", is_flag=True, help="give the user admin rights")
@click.option("--full-name", default="")
@click.option("--email", default="")
def create_user(name: str, password: str, admin: bool, full_name: str, email: str) -> None:
    """Create a user in the configured database (SERVER mode)."""
    from visionatrix import users
    from visionatrix.db.engine import create_engine, session_factory, upgrade_to_head

    async def go() -> None:
        engine = create_engine(Config().database_url())
        try:
            await upgrade_to_head(engine)
            async with session_factory(engine)() as session:
                await users.create_user(
                    session, name, password, admin=admin, full_name=full_name, email=email
                )
        finally:
            await engine.dispose()

    try:
        asyncio.run(go())
    except VixError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(1)
    click.echo(f"created user {name}{' (admin)' if admin else ''}")


@main.command("install-flow")
@click.argument("name")
def install_flow(name: str) -> None:
    """Download a flow's models into MODELS_DIR (with progress) and install it in the local database.

    NAME is a flow of the built-in catalog or a path to a flow JSON file.
    """
    from visionatrix.cli_install import install_locally

    sys.exit(install_locally(Config(), name))


def _attach_client_commands() -> None:
    from visionatrix.cli_remote import register

    register(main)


_attach_client_commands()

if __name__ == "__main__":
    main()
