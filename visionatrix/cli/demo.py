"""``visionatrix demo``: built-in flows made runnable without downloads, on tiny random models.

The tiny models (``visionatrix.testing.tiny_models``) have the real file formats and names and
random weights: every task runs through the real loaders and samplers and makes a noise image. It
tries the plumbing (queue, worker, progress, results) in seconds instead of gigabytes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import click

from visionatrix.cli.banner import cli_command
from visionatrix.config import Config
from visionatrix.errors import InvalidInput

NOTICE = (
    "Demo: tiny models with RANDOM weights, in the real file formats, so that flows run without "
    "downloads.\nTheir tasks run the real code and produce NOISE images: they try the plumbing, "
    "not the pictures."
)


@click.command("demo")
@click.option(
    "--flow", "flows", multiple=True, metavar="NAME", help="a built-in flow (repeatable; default: a few)"
)
@click.option("--all", "all_flows", is_flag=True, help="every built-in flow tiny models can make runnable")
def demo(flows: tuple[str, ...], all_flows: bool) -> None:
    """Write tiny random models into MODELS_DIR and install the built-in flows they make runnable.

    A model file already in MODELS_DIR is kept, never overwritten. Without --flow: sdxl_lighting and
    the two BiRefNet background removers. `visionatrix run --demo` does this, then starts the server.
    """
    config = Config()
    _next_steps(config, install_demo(config, list(flows), all_flows))


def install_demo(config: Config, flows: Sequence[str] = (), all_flows: bool = False) -> list[str]:
    """The demo's flows installed on tiny models, each with a line of progress; returns their names."""
    names = _demo_flows(flows, all_flows)
    click.echo(NOTICE)
    installed = []
    # each flow gets its own line here: the catalog's "flow installed" record would only repeat it
    catalog_log = logging.getLogger("visionatrix.flows.catalog")
    level = catalog_log.level
    catalog_log.setLevel(logging.WARNING)
    try:
        for index, name in enumerate(names, 1):
            click.echo(f"[{index}/{len(names)}] {name}: ", nl=False)
            if _install(config, name):
                installed.append(name)
    finally:
        catalog_log.setLevel(level)
    return installed


def _demo_flows(flows: Sequence[str], all_flows: bool) -> list[str]:
    from visionatrix.flows.sources import shipped_flows
    from visionatrix.testing import tiny_models

    shipped = shipped_flows()
    unknown = sorted(set(flows) - set(shipped))
    if unknown:
        raise InvalidInput(f"not built-in flows: {', '.join(unknown)} (see: {cli_command()} flows)")
    if not all_flows:
        return list(flows) or list(tiny_models.DEFAULT_FLOWS)
    # the flows whose every model file has a tiny writer; u2netp's "writer" downloads the real one
    return [
        name
        for name, graph in sorted(shipped.items())
        if name != tiny_models.U2NETP_FLOW
        and (planned := tiny_models.plan([graph]))
        and not any(item.skipped for item in planned)
    ]


def _install(config: Config, name: str) -> bool:
    from visionatrix.cli.install import install_graph
    from visionatrix.testing import tiny_models

    start = time.monotonic()
    graph = tiny_models.flow_graphs([name])[0]
    planned = tiny_models.plan([graph])
    skipped = [item for item in planned if item.skipped]
    if skipped:
        reasons = "; ".join(f"{item.entry.filename}: {item.skipped}" for item in skipped)
        click.echo(f"skipped, no tiny model for {reasons}")
        return False
    todo = [item for item in planned if not item.entry.target(config.models_dir).exists()]
    written = tiny_models.write_planned(config.models_dir, todo)
    size = sum(path.stat().st_size for path in written)
    kept = len(planned) - len(todo)
    install_graph(config, graph)
    amount = f"{size / 1e6:.1f} MB" if size >= 100_000 else f"{size / 1e3:.0f} kB"
    files = f"wrote {len(written)} tiny model file(s), {amount}" if written else ""
    if kept:
        files += f"{', ' if files else ''}kept {kept} already in place"
    click.echo(f"{files or 'no model files'}; installed ({time.monotonic() - start:.1f} s)")
    return True


def _next_steps(config: Config, installed: list[str]) -> None:
    if not installed:
        return
    cli = cli_command()
    click.echo(f"Installed on tiny models in {config.models_dir}: {', '.join(installed)}.")
    click.echo(f"Next: with the server running ({cli} run), open http://localhost:{config.port}/")
    click.echo(
        "The tiny files sit under the real models' names, so install-flow takes them as installed: "
        "for real models use another MODELS_DIR, or delete these files first."
    )
