"""``visionatrix install-flow``: models into MODELS_DIR with a progress bar, then the flow into the DB."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import click
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn, TransferSpeedColumn

from visionatrix.config import Config
from visionatrix.errors import VixError


def _graph(name: str, config: Config) -> dict[str, Any]:
    from visionatrix.flows.sources import CatalogSources

    path = Path(name)
    if path.suffix == ".json" and path.is_file():
        try:
            return json.loads(path.read_text())  # type: ignore[no-any-return]
        except json.JSONDecodeError as exc:
            raise VixError(f"{path} is not a JSON flow file: {exc}") from None
    flows = asyncio.run(CatalogSources(config.flows_url).flows())
    if name not in flows:
        raise VixError(
            f"flow '{name}' is neither in the catalog ({', '.join(sorted(flows))}) nor a JSON file"
        )
    return flows[name]


@click.command("install-flow")
@click.argument("name")
def install_flow(name: str) -> None:
    """Download a flow's models into MODELS_DIR (with progress) and install it in the local database.

    NAME is a flow of the catalog (built-in or FLOWS_URL) or a path to a flow JSON file. A flow this
    server cannot run is refused, naming each reason, before anything is downloaded.
    """
    config = Config()
    flow, count = install_graph(config, _graph(name, config))
    click.echo(f"installed flow {flow['name']} ({count} model file(s) in {config.models_dir})")


def install_graph(config: Config, graph: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Refuse a flow this server cannot run, fetch the model files it lacks, then record it installed.

    Returns the flow and how many model files it uses."""
    from visionatrix.engine import registry
    from visionatrix.flows.runnable import require_runnable
    from visionatrix.flows.sources import CatalogSources

    catalog = asyncio.run(CatalogSources(config.flows_url, config.models_catalog_url).models())
    registry.load_modules(config.extra_node_modules())
    require_runnable(graph, catalog, config.models_dir)
    count = _download_models(config, graph, catalog)
    return asyncio.run(_register(config, graph)), count


def _download_models(config: Config, graph: dict[str, Any], catalog: Any) -> int:
    from visionatrix.models import catalog as model_catalog
    from visionatrix.models.download import ensure_models, missing_models

    entries = model_catalog.match_graph(graph, catalog)
    if not missing_models(entries, config.models_dir):
        return len(entries)  # nothing to fetch: no progress display at all
    with Progress(
        TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn()
    ) as progress:
        bars: dict[str, TaskID] = {}

        def show(filename: str, done: int, total: int) -> None:
            if filename not in bars:
                bars[filename] = progress.add_task(filename, total=total or None)
            progress.update(bars[filename], completed=done, total=total or None)

        ensure_models(
            entries,
            config.models_dir,
            on_progress=show,
            hf_token=config.hf_auth_token.get_secret_value() or None,
        )
    return len(entries)


async def _register(config: Config, graph: dict[str, Any]) -> dict[str, Any]:
    from visionatrix.db.engine import create_engine, session_factory, upgrade_to_head
    from visionatrix.flows.catalog import FlowCatalog
    from visionatrix.flows.sources import CatalogSources

    engine = create_engine(config.database_url())
    try:
        await upgrade_to_head(engine)
        sessions = session_factory(engine)

        async def no_token() -> str:
            return ""

        sources = CatalogSources(config.flows_url, config.models_catalog_url)
        catalog = FlowCatalog(
            sessions, config.models_dir, no_token, config.extra_node_modules(), sources=sources
        )
        async with sessions() as session:
            return await catalog.install(session, graph)
    finally:
        await engine.dispose()
