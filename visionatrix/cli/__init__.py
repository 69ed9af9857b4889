"""The composition root: ``visionatrix run | create-user | install-flow | demo`` plus the client commands.

The only package that wires config, server, worker and client together, and that configures
logging. Each command group has its module; every failure goes through ``errors.Commands``.
"""

from __future__ import annotations

import logging

import click

from visionatrix.cli import demo, install, remote, run, users
from visionatrix.cli.errors import Commands


def _configure_logging(verbose: int) -> None:
    level = logging.DEBUG if verbose > 1 else logging.INFO if verbose == 1 else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("visionatrix").setLevel(logging.DEBUG if verbose > 1 else logging.INFO)


@click.group(cls=Commands)
@click.option("-v", "--verbose", count=True, help="more log output (-vv for debug)")
def main(verbose: int) -> None:
    """Visionatrix: an AI flow server speaking the Visionatrix task API."""
    _configure_logging(verbose)


main.add_command(run.run)
main.add_command(users.create_user)
main.add_command(install.install_flow)
main.add_command(demo.demo)
remote.register(main)

__all__ = ["main"]
