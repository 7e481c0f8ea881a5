"""Commands for admins: `quart --app app create-admin EMAIL`."""

from __future__ import annotations

import asyncio

import click
from quart import Quart

from app.errors import ServiceError
from app.models import User
from app.services import accounts


def init_app(app: Quart) -> None:
    @app.cli.command("create-admin")
    @click.argument("email")
    @click.option("--name", default="", help="Display name (default: the address's local part).")
    @click.password_option(help="Prompted for, twice, when not given.")
    def create_admin(email: str, name: str, password: str) -> None:
        """Create a site administrator (or promote an existing account) with a password."""

        async def run() -> User:
            database = app.extensions["database"]
            try:
                async with database.sessionmaker() as session:
                    return await accounts.create_admin(
                        session,
                        app.extensions["account_settings"],
                        email=email,
                        display_name=name,
                        password=password,
                    )
            finally:
                await database.dispose()

        try:
            user = asyncio.run(run())
        except ServiceError as refusal:
            raise click.ClickException(refusal.message) from refusal
        click.echo(f"{user.email} is a site administrator.")
