"""``create_app(config)``: the FastAPI application with its lifespan, routers, guards and error table."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from visionatrix import __version__, settings, users
from visionatrix.api import errors, openapi
from visionatrix.api.middleware import AllowedMethods, SameOrigin, SecurityHeaders
from visionatrix.api.routes import docs, flows, other, task_events, tasks, ui, worker_api, workers
from visionatrix.api.routes import settings as settings_routes
from visionatrix.api.services import Services
from visionatrix.api.timing import ServerTiming
from visionatrix.api.uploads import BodyLimit
from visionatrix.config import Config, Mode
from visionatrix.db.engine import create_engine, session_factory, upgrade_to_head
from visionatrix.flows.catalog import FlowCatalog
from visionatrix.flows.sources import CatalogSources
from visionatrix.storage import Storage
from visionatrix.tasks.events import TaskEvents
from visionatrix.tasks.queue import TaskQueue
from visionatrix.tasks.service import Limits, TaskService
from visionatrix.tasks.signals import Signal
from visionatrix.tasks.webhook_targets import WebhookTargets
from visionatrix.tasks.webhooks import Webhooks

log = logging.getLogger(__name__)

# JSON and url-encoded bodies are read whole: none of this API's needs more
MAX_PLAIN_BODY = 1024 * 1024
_LOOPBACK = {"localhost", "127.0.0.1", "::1", "[::1]"}


def create_app(config: Config) -> FastAPI:
    # /openapi.json, /docs and /redoc are routes of ``docs``: per-flow paths, offline files, the API's auth
    app = FastAPI(
        title="Visionatrix",
        version=__version__,
        lifespan=_lifespan(config),
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    errors.install(app)
    app.add_middleware(ServerTiming)
    for module in (tasks, task_events, worker_api, flows, settings_routes, workers, other, docs, ui):
        app.include_router(module.router)
    _guard(app, config)
    openapi.install(app, config.auth_required)
    return app


def _guard(app: FastAPI, config: Config) -> None:
    # the last added runs first: every answer gets the safety headers, and a cross-site write is
    # refused before its body is read
    app.add_middleware(BodyLimit, max_bytes=max(MAX_PLAIN_BODY, int(config.max_text_kb * 1024) * 4))
    app.add_middleware(AllowedMethods, spec=lambda: app.openapi())
    app.add_middleware(SameOrigin)
    app.add_middleware(SecurityHeaders)


def _webhook_targets(config: Config) -> WebhookTargets:
    return WebhookTargets(allow_private=not config.auth_required, allowlist=config.webhook_allowed())


def _limits(config: Config) -> Limits:
    return Limits(
        max_image_pixels=config.max_image_pixels,
        # one request may add 16 texts at the field limit: count x input text is bounded by it
        max_create_text_bytes=int(config.max_text_kb * 1024) * 16,
        max_list_tasks=config.max_list_tasks,
    )


def _warn_if_exposed(config: Config) -> None:
    if config.mode is Mode.DEFAULT and config.host not in _LOOPBACK:
        log.warning(
            "!!! DEFAULT mode has no authentication, and it listens on %s: anyone who can reach this "
            "port is an administrator. Bind to localhost, or run --mode SERVER with users !!!",
            config.host,
        )


def _lifespan(config: Config):  # type: ignore[no-untyped-def]
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        _warn_if_exposed(config)
        engine = create_engine(config.database_url())
        await upgrade_to_head(engine)
        sessions = session_factory(engine)
        if config.auth_required:
            async with sessions() as session:
                await users.bootstrap_admin(session, config.admin_password.get_secret_value(), config.host)
        storage = Storage(config.base_data_dir)
        new_work, finished = Signal(), Signal()
        targets = _webhook_targets(config)
        webhooks = Webhooks(targets)
        events = TaskEvents(sessions)

        async def hf_token() -> str:
            async with sessions() as session:
                return await settings.get_global(session, "huggingface_auth_token") or (
                    config.hf_auth_token.get_secret_value()
                )

        services = Services(
            config=config,
            sessions=sessions,
            storage=storage,
            tasks=TaskService(
                storage,
                new_work,
                events,
                sessions=sessions,
                finished=finished,
                limits=_limits(config),
                webhook_targets=targets,
            ),
            queue=TaskQueue(
                sessions,
                storage,
                new_work,
                webhooks,
                events,
                lease_seconds=config.lease_seconds,
                max_attempts=config.max_attempts,
                finished=finished,
            ),
            flows=FlowCatalog(
                sessions,
                config.models_dir,
                hf_token,
                config.extra_node_modules(),
                new_work.fire,
                CatalogSources(config.flows_url, config.models_catalog_url, config.catalog_ttl),
            ),
            verifier=users.Verifier(max_failures=config.login_max_failures),
            finished=finished,
            events=events,
        )
        app.state.services = services
        sweeper = asyncio.create_task(_sweep(services.queue, min(5.0, config.lease_seconds / 4)))
        pruner = asyncio.create_task(events.prune_forever())
        try:
            yield
        finally:
            sweeper.cancel()
            pruner.cancel()
            await asyncio.gather(sweeper, pruner, return_exceptions=True)
            await services.flows.aclose()
            await webhooks.aclose()
            await engine.dispose()

    return lifespan


async def _sweep(queue: TaskQueue, every: float) -> None:
    """Requeue tasks whose worker stopped reporting, even when no worker is asking for work."""
    while True:
        await asyncio.sleep(every)
        try:
            await queue.expire_leases()
        except Exception:  # the sweeper must outlive a database hiccup
            log.exception("lease sweep failed")
