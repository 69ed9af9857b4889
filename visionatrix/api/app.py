"""``create_app(config)``: the FastAPI application with its lifespan, routers and error table."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from visionatrix import __version__, settings, users
from visionatrix.api import errors
from visionatrix.api.routes import docs, flows, other, task_events, tasks, ui, worker_api, workers
from visionatrix.api.routes import settings as settings_routes
from visionatrix.api.services import Services
from visionatrix.api.timing import ServerTiming
from visionatrix.config import Config
from visionatrix.db.engine import create_engine, session_factory, upgrade_to_head
from visionatrix.flows.catalog import FlowCatalog
from visionatrix.flows.sources import CatalogSources
from visionatrix.storage import Storage
from visionatrix.tasks.events import TaskEvents
from visionatrix.tasks.queue import TaskQueue
from visionatrix.tasks.service import TaskService
from visionatrix.tasks.signals import Signal
from visionatrix.tasks.webhooks import Webhooks

log = logging.getLogger(__name__)


def create_app(config: Config) -> FastAPI:
    # /openapi.json, /docs and /redoc are routes of ``docs``: per-flow paths, offline files, auth
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
    return app


def _lifespan(config: Config):  # type: ignore[no-untyped-def]
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(config.database_url())
        await upgrade_to_head(engine)
        sessions = session_factory(engine)
        if config.auth_required:
            async with sessions() as session:
                await users.bootstrap_admin(session, config.admin_password.get_secret_value(), config.host)
        storage = Storage(config.base_data_dir)
        new_work, finished, webhooks = Signal(), Signal(), Webhooks()
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
            tasks=TaskService(storage, new_work, events),
            queue=TaskQueue(
                sessions,
                storage,
                new_work,
                webhooks,
                events,
                lease_seconds=config.lease_seconds,
                max_attempts=config.max_attempts,
            ),
            flows=FlowCatalog(
                sessions,
                config.models_dir,
                hf_token,
                config.extra_node_modules(),
                new_work.fire,
                CatalogSources(config.flows_url, config.models_catalog_url, config.catalog_ttl),
            ),
            verifier=users.Verifier(),
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
