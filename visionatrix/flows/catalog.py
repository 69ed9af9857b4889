"""Installed and available flows: install (from the catalog or a file), delete, progress.

The catalog of available flows comes from ``sources`` (the shipped flows, or ``FLOWS_URL``).
Installing says the truth: a flow is accepted only when this server can run it (``runnable``:
node classes, sampler names, model architectures); otherwise it is refused with every reason.
Models missing from disk are downloaded in the background, and their headers are checked again
once they are there, before the flow counts as installed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from visionatrix.db import flows as db_flows
from visionatrix.engine import registry
from visionatrix.errors import (
    Conflict,
    FlowNotInstalled,
    FlowNotRunnable,
    InvalidInput,
    NotFound,
    VixError,
)
from visionatrix.flows.model import Flow
from visionatrix.flows.parser import parse_flow
from visionatrix.flows.runnable import Assessment, assess
from visionatrix.flows.sources import CatalogSources, shipped_flows, version_of
from visionatrix.models import catalog as model_catalog
from visionatrix.models.catalog import ModelEntry
from visionatrix.models.download import ensure_models

log = logging.getLogger(__name__)

Models = Mapping[str, ModelEntry]


def builtin_flows() -> dict[str, dict[str, Any]]:
    """The flows that ship with the package, by name."""
    return dict(shipped_flows())


class FlowCatalog:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        models_dir: Path,
        hf_token: Callable[[], Any],
        node_modules: list[str] | None = None,
        changed: Callable[[], None] = lambda: None,
        sources: CatalogSources | None = None,
    ) -> None:
        registry.load_modules(node_modules or [])
        self.sessions = sessions
        self.models_dir = models_dir
        self.hf_token = hf_token  # async callable: the token from settings or the environment
        self.sources = sources or CatalogSources()
        self._installing: dict[str, asyncio.Task[None]] = {}
        # called on every install/delete: wakes long-polling workers to re-read what they can run
        self._changed = changed

    async def available(self) -> dict[str, dict[str, Any]]:
        """The catalog's flows by name (refreshed from ``FLOWS_URL`` at most every ``ttl`` seconds)."""
        return await self.sources.flows()

    def assess(self, graph: dict[str, Any], models: Models) -> tuple[Flow, Assessment]:
        """Parse ``graph`` and judge whether this server can run it; the Flow is of the graph to install."""
        parse_flow(graph)  # a malformed flow is an error of its own, before any judgement
        verdict = assess(graph, models, self.models_dir)
        flow = parse_flow(verdict.graph)
        flow.models = [_model_info(e, self.models_dir) for e in verdict.models]
        return flow, verdict

    def describe(self, graph: dict[str, Any], models: Models) -> tuple[Flow, Assessment]:
        """``assess``, refusing a flow this server cannot run with every reason."""
        flow, verdict = self.assess(graph, models)
        if not verdict.runnable:
            raise FlowNotRunnable(flow.name, verdict.reasons)
        return flow, verdict

    async def installed(self, session: AsyncSession) -> list[dict[str, Any]]:
        """Installed flows; Visionatrix's ``private`` and ``new_version_available`` from the catalog as
        last read (this listing never waits on a remote catalog)."""
        catalog = self.sources.current_flows()
        return [
            self._versioned(self._refresh(row.flow), catalog) for row in await db_flows.all_installed(session)
        ]

    @staticmethod
    def _versioned(flow: dict[str, Any], catalog: dict[str, dict[str, Any]] | None) -> dict[str, Any]:
        if catalog is None:
            return flow
        newer = catalog.get(flow["name"])
        latest = parse_flow(newer).version if newer is not None else ""
        flow["private"] = newer is None
        flow["new_version_available"] = (
            latest if version_of(latest) > version_of(flow.get("version", "")) else ""
        )
        return flow

    async def not_installed(self, session: AsyncSession) -> list[dict[str, Any]]:
        """Every catalog flow not installed, with whether this server can run it and why not."""
        have = {row.name for row in await db_flows.all_installed(session)}
        available, models = await self.available(), await self.sources.models()
        wanted = [graph for name, graph in available.items() if name not in have]
        # ~5 ms a flow (regexes, file headers): kept off the event loop
        return await asyncio.to_thread(lambda: [self.listing(graph, models) for graph in wanted])

    def listing(self, graph: dict[str, Any], models: Models) -> dict[str, Any]:
        """A catalog flow as listed: Visionatrix's fields plus ``runnable`` and its reasons."""
        flow, verdict = self.assess(graph, models)
        return {
            **flow.model_dump(),
            "runnable": verdict.runnable,
            "unsupported_reasons": verdict.reasons,
            "removed_options": verdict.removed_options,
            "missing_node_classes": verdict.missing_node_classes,
            # Visionatrix's own flag for "no worker can run this"; its UI greys such flows out
            "is_supported_by_workers": verdict.runnable,
            "private": False,
            "new_version_available": "",
        }

    async def get(self, session: AsyncSession, name: str) -> tuple[Flow, dict[str, Any]]:
        row = await db_flows.get(session, name)
        if row is None:
            if name in await self.available():
                raise FlowNotInstalled(
                    f"flow '{name}' is not installed: install it with `visionatrix install-flow {name}` "
                    f"or `POST /vapi/flows/flow?name={name}` (admin)"
                )
            raise NotFound(f"flow '{name}' not found")
        return Flow.model_validate(row.flow), row.graph

    def _refresh(self, flow: dict[str, Any]) -> dict[str, Any]:
        for model in flow.get("models", []):
            model["installed"] = (self.models_dir / model["folder"] / model["filename"]).is_file()
        return flow

    async def install_file(self, session: AsyncSession, raw: bytes) -> dict[str, Any]:
        try:
            graph = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidInput(f"flow file is not valid JSON: {exc}") from exc
        return await self.install(session, graph)

    async def install_named(self, session: AsyncSession, name: str) -> dict[str, Any]:
        available = await self.available()
        if name not in available:
            raise NotFound(f"flow '{name}' is not in the catalog")
        return await self.install(session, available[name])

    async def install(self, session: AsyncSession, graph: dict[str, Any]) -> dict[str, Any]:
        """Install now when every model is on disk; else download in the background first."""
        models = await self.sources.models()
        flow, verdict = self.describe(graph, models)
        if flow.name in self._installing and not self._installing[flow.name].done():
            raise Conflict(f"flow '{flow.name}' is already being installed")
        await db_flows.start_install(session, flow.name)
        await session.commit()
        if all(m["installed"] for m in flow.models):
            await self._finish(flow, verdict.graph, "")
        else:
            job = asyncio.get_running_loop().create_task(self._download_then_finish(flow, graph, models))
            self._installing[flow.name] = job
        return flow.model_dump()

    async def _download_then_finish(self, flow: Flow, graph: dict[str, Any], models: Models) -> None:
        entries = model_catalog.match_graph(graph, models)
        reporter = _ProgressReporter(self.sessions, flow.name, asyncio.get_running_loop())
        error, installed_graph = "", graph
        try:
            token = await self.hf_token()
            await asyncio.to_thread(
                ensure_models, entries, self.models_dir, on_progress=reporter, hf_token=token or None
            )
            # the files are here now: their headers, not the catalog, say what they hold
            flow, verdict = self.describe(graph, models)
            installed_graph = verdict.graph
        except VixError as exc:
            error = exc.message
        except Exception as exc:  # a download thread must never take the server down
            log.exception("flow install failed", extra={"action": "flow_install_failed", "flow": flow.name})
            error = f"{type(exc).__name__}: {exc}"
        await self._finish(flow, installed_graph, error)

    async def _finish(self, flow: Flow, graph: dict[str, Any], error: str) -> None:
        async with self.sessions() as session:
            if not error:
                await db_flows.put_installed(session, flow.name, graph, self._refresh(flow.model_dump()))
            await db_flows.finish_install(session, flow.name, error)
            await session.commit()
        self._bump()
        log.info(
            "flow installed" if not error else "flow install failed",
            extra={"flow": flow.name, "error": error},
        )

    async def delete(self, session: AsyncSession, name: str) -> None:
        if not await db_flows.remove(session, name):
            raise NotFound(f"flow '{name}' is not installed")
        await session.commit()
        self._bump()

    def _bump(self) -> None:
        self._changed()

    async def progress(self, session: AsyncSession) -> list[dict[str, Any]]:
        return [
            {
                "name": row.name,
                "progress": round(row.progress, 1),
                "error": row.error,
                "started_at": row.started_at.isoformat(),
                "updated_at": row.updated_at.isoformat(),
                "finished_at": row.finished_at.isoformat() if row.finished_at else None,
            }
            for row in await db_flows.installs(session)
        ]

    async def aclose(self) -> None:
        for job in self._installing.values():
            job.cancel()
        await asyncio.gather(*self._installing.values(), return_exceptions=True)


def _model_info(entry: Any, models_dir: Path) -> dict[str, Any]:
    return {
        "name": entry.name,
        "filename": entry.filename,
        "folder": entry.folder,
        "url": entry.url,
        "homepage": entry.homepage,
        "hash": entry.hash,
        "file_size": entry.file_size,
        "installed": entry.target(models_dir).is_file(),
    }


class _ProgressReporter:
    """Called from the download thread; writes progress to the database at most twice a second."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], name: str, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.sessions = sessions
        self.name = name
        self.loop = loop
        self.totals: dict[str, tuple[int, int]] = {}
        self.last = 0.0

    def __call__(self, filename: str, done: int, total: int) -> None:
        self.totals[filename] = (done, total)
        now = time.monotonic()
        if now - self.last < 0.5 and done < total:
            return
        self.last = now
        got = sum(d for d, _t in self.totals.values())
        want = sum(t for _d, t in self.totals.values()) or 1
        asyncio.run_coroutine_threadsafe(self._save(min(99.0, 100.0 * got / want)), self.loop)

    async def _save(self, progress: float) -> None:
        async with self.sessions() as session:
            await db_flows.set_install_progress(session, self.name, progress)
            await session.commit()
