"""``visionatrix create-user``: a user in the configured database (for SERVER mode)."""

from __future__ import annotations

import asyncio

import click

from visionatrix.config import Config


@click.command("create-user")
@click.option("--name", required=True)
@click.option("--password", required=True)
@click.option("--admin", is_flag=True, help="give the user admin rights")
@click.option("--full-name", default="")
@click.option("--email", default="")
def create_user(name: str, password: str, admin: bool, full_name: str, email: str) -> None:
    """Create a user in the configured database (SERVER mode)."""
    asyncio.run(_create(Config(), name, password, admin, full_name, email))
    click.echo(f"created user {name}{' (admin)' if admin else ''}")


async def _create(config: Config, name: str, password: str, admin: bool, full_name: str, email: str) -> None:
    from visionatrix import users
    from visionatrix.db.engine import create_engine, session_factory, upgrade_to_head

    engine = create_engine(config.database_url())
    try:
        await upgrade_to_head(engine)
        async with session_factory(engine)() as session:
            await users.create_user(session, name, password, admin=admin, full_name=full_name, email=email)
    finally:
        await engine.dispose()
