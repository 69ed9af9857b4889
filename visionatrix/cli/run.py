"""``visionatrix run``: the server (DEFAULT mode with its local workers, or SERVER) or a WORKER."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import click

from visionatrix.cli import access_log
from visionatrix.config import Config, Mode, describe_environment
from visionatrix.errors import VixError


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


@click.command(help=_env_help())
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
@click.option(
    "--demo",
    is_flag=True,
    help="first install a few built-in flows on tiny random models (noise images; see `demo --help`)",
)
def run(
    mode: str | None,
    host: str | None,
    port: int | None,
    server: str | None,
    local_workers: int | None,
    demo: bool,
) -> None:
    overrides = {"mode": mode and mode.upper(), "host": host, "port": port, "server": server}
    overrides["local_workers"] = local_workers
    config = Config(**{k: v for k, v in overrides.items() if v is not None})
    if demo:
        from visionatrix.cli.demo import install_demo

        install_demo(config)
    if config.mode is Mode.WORKER:
        from visionatrix.worker.process import run_worker

        if not config.server:
            raise click.UsageError("WORKER mode needs --server URL (or VIX_SERVER)")
        run_worker(config)
    _run_server(config)


def _run_server(config: Config) -> None:
    import uvicorn

    from visionatrix.api.app import create_app
    from visionatrix.worker.supervisor import LocalWorkers

    if config.auth_required:
        # a refused first admin is the command's one-line error, before uvicorn prints anything
        asyncio.run(_bootstrap_admin(config))
    app = create_app(config)
    refusal = _StartupRefusal(app)
    count = config.local_workers if config.mode is Mode.DEFAULT else 0
    workers = LocalWorkers(_local_url(config), count)
    server = _server_class()(
        uvicorn.Config(
            app, host=config.host, port=config.port, log_level="info", timeout_graceful_shutdown=10
        ),
        workers.stop,
        functools.partial(_print_banner, config, count),
    )
    access_log.quiet_idle_workers()  # after uvicorn.Config, which sets up its loggers
    workers.start_when(lambda: bool(server.started))
    try:
        server.run()
    except KeyboardInterrupt:
        pass  # Ctrl+C: uvicorn has stopped gracefully and raises the signal it held back again
    except SystemExit:
        refusal.raise_instead()
        raise
    finally:
        workers.stop()


async def _bootstrap_admin(config: Config) -> None:
    from visionatrix import users
    from visionatrix.db.engine import create_engine, session_factory, upgrade_to_head

    engine = create_engine(config.database_url())
    try:
        await upgrade_to_head(engine)
        async with session_factory(engine)() as session:
            await users.bootstrap_admin(session, config.admin_password.get_secret_value(), config.host)
    finally:
        await engine.dispose()


async def _print_banner(config: Config, local_workers: int, app: Any) -> None:
    from visionatrix.cli.banner import banner

    services = app.state.services
    async with services.sessions() as session:
        flows = [flow["name"] for flow in await services.flows.installed(session)]
    click.echo(banner(config, flows, local_workers))


def _local_url(config: Config) -> str:
    # the local worker reaches a wildcard or localhost bind over IPv4 loopback
    host = "127.0.0.1" if config.host in ("localhost", "0.0.0.0", "::") else config.host
    return f"http://{host}:{config.port}"


def _server_class() -> type:
    import uvicorn

    class Server(uvicorn.Server):
        """Stops the local workers first, while it still answers them (each gives its task back),
        and ends open long polls at once instead of waiting them out."""

        def __init__(
            self,
            config: uvicorn.Config,
            stop_workers: Callable[[], None],
            on_started: Callable[[Any], Awaitable[None]],
        ) -> None:
            super().__init__(config)
            self.stop_workers = stop_workers
            self.on_started = on_started
            self.exiting = False

        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            if self.started:
                await self.on_started(self.config.app)

        def handle_exit(self, sig: int, frame: Any) -> None:
            services = getattr(self.config.app.state, "services", None)
            if services is not None:
                services.queue.stopping = True
            if self.exiting:  # a second signal: uvicorn's own handling (SIGINT twice forces)
                super().handle_exit(sig, frame)
                return
            self.exiting = True
            # the signal handler runs on the event loop's thread: wait for the workers elsewhere
            threading.Thread(target=self._stop, args=(sig, frame), daemon=True, name="stop-workers").start()

        def _stop(self, sig: int, frame: Any) -> None:
            self.stop_workers()
            super().handle_exit(sig, frame)

    return Server


class _StartupRefusal:
    """A VixError raised while the app starts (a refused configuration) becomes the command's one-line
    error, instead of uvicorn's traceback and "Application startup failed"."""

    def __init__(self, app: Any) -> None:
        self.error: VixError | None = None
        inner = app.router.lifespan_context

        @contextlib.asynccontextmanager
        async def lifespan(app: Any) -> AsyncIterator[Any]:
            async with contextlib.AsyncExitStack() as stack:
                try:
                    state = await stack.enter_async_context(inner(app))
                except VixError as exc:
                    self.error = exc
                    raise
                yield state

        app.router.lifespan_context = lifespan
        logging.getLogger("uvicorn.error").addFilter(self._quiet)

    def _quiet(self, record: logging.LogRecord) -> bool:
        return self.error is None or record.levelno < logging.ERROR

    def raise_instead(self) -> None:
        if self.error is not None:
            raise self.error
