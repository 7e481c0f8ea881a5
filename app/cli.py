"""Commands for admins: `quart --app app create-admin EMAIL`."""

from __future__ import annotations

import asyncio

import click
from quart import Quart

from app.demo import DEMO_PASSWORD, PEOPLE, seed_demo
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

    @app.cli.command("seed-demo")
    @click.option("--issues-per-project", default=120, show_default=True)
    def seed_demo_command(issues_per_project: int) -> None:
        """Fill an empty database with demo people, projects and issues."""

        async def run() -> int:
            database = app.extensions["database"]
            try:
                async with database.sessionmaker() as session:
                    return await seed_demo(
                        session,
                        app.extensions["account_settings"],
                        issues_per_project=issues_per_project,
                    )
            finally:
                await database.dispose()

        try:
            created = asyncio.run(run())
        except RuntimeError as refusal:
            raise click.ClickException(str(refusal)) from refusal
        click.echo(
            f"Created {created} issues. Log in as {PEOPLE[0][0]} with the password "
            f'"{DEMO_PASSWORD}".'
        )
