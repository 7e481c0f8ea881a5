"""Commands for admins: `quart --app app create-admin EMAIL`, `reset-two-factor EMAIL`,
`seed-demo`, `mail pending`, `mail retry`, `prune-activity`, `backup`, `check`."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import click
from quart import Quart
from sqlalchemy.ext.asyncio import AsyncSession

from app.commands import imports
from app.commands.backup import BackupRefused, back_up
from app.commands.demo import DEMO_PASSWORD, PEOPLE, seed_demo
from app.commands.maintenance import prune_activity
from app.commands.running import run_with_session
from app.errors import ServiceError
from app.models import User
from app.outbound.mail.outbox import retry_mail, undelivered_mail
from app.services import accounts, project_webhooks, two_factor


@dataclass(frozen=True)
class DeliveryQueue:
    """Something the app delivers later and may give up on: what `<name> pending` lists and
    `<name> retry` sends again. Mail is one; each further kind (webhook deliveries) is one
    more entry in delivery_queues() and gets the same two commands."""

    name: str
    noun: str
    undelivered: Callable[[AsyncSession], Awaitable[Sequence[Any]]]
    retry: Callable[[AsyncSession, list[int] | None], Awaitable[int]]
    describe: Callable[[Any], str]


def _describe_mail(message: Any) -> str:
    line = (
        f"{message.id:>6}  {message.status:<7}  attempts {message.attempts:<2}  "
        f"next {message.next_attempt_at:%Y-%m-%d %H:%M}  {message.to_address}  {message.subject}"
    )
    return line + (f"\n        last error: {message.last_error}" if message.last_error else "")


def delivery_queues() -> list[DeliveryQueue]:
    return [
        DeliveryQueue(
            name="mail",
            noun="message",
            undelivered=undelivered_mail,
            retry=retry_mail,
            describe=_describe_mail,
        ),
        DeliveryQueue(
            name="webhooks",
            noun="delivery",
            undelivered=project_webhooks.pending_deliveries,
            retry=project_webhooks.retry_failed,
            describe=project_webhooks.describe_delivery,
        ),
    ]


def _delivery_commands(app: Quart, queue: DeliveryQueue) -> click.Group:
    @click.group(name=queue.name, help=f"Show and retry {queue.name} that is not delivered.")
    def group() -> None:
        pass

    @group.command("pending")
    def pending() -> None:
        """List what waits to be delivered (pending) and what was given up on (failed)."""
        rows = run_with_session(app, queue.undelivered)
        for row in rows:
            click.echo(queue.describe(row))
        click.echo(f"{len(rows)} {queue.noun}(s) pending or failed.")

    @group.command("retry")
    @click.option("--all", "retry_all", is_flag=True, help="Every failed one.")
    @click.argument("ids", nargs=-1, type=int)
    def retry(retry_all: bool, ids: tuple[int, ...]) -> None:
        """Make failed ones (IDS, or --all) pending again, due now."""
        if retry_all == bool(ids):
            raise click.UsageError("Give the ids to retry, or --all (not both).")
        chosen = None if retry_all else list(ids)
        count = run_with_session(app, lambda session: queue.retry(session, chosen))
        click.echo(f"{count} {queue.noun}(s) will be sent again.")
        if chosen is not None and count < len(chosen):
            click.echo("The others are unknown, already delivered, or being sent right now.")

    return group


@click.command("check")
@click.option("--config", "config_name", default=None, help="Default: $ISSUES_CONFIG.")
def check_command(config_name: str | None) -> None:
    """Print what is missing or unsafe in the configuration; exit 1 when anything is unsafe.

    Loaded without the app (a quart.commands entry point), so it runs when the app itself
    would refuse to start."""
    from app.config import DevelopmentConfig, config
    from app.web.checks import check

    name = config_name or os.environ.get("ISSUES_CONFIG") or "default"
    if config.get(name) is DevelopmentConfig:
        from dotenv import load_dotenv

        load_dotenv()  # as create_app does in development
    name, problems = check(name)
    for problem in problems:
        click.echo(str(problem))
    unsafe = [problem for problem in problems if problem.unsafe]
    click.echo(
        f"configuration {name}: {len(unsafe)} unsafe, {len(problems) - len(unsafe)} warning(s)"
    )
    if unsafe:
        raise SystemExit(1)


def init_app(app: Quart) -> None:
    imports.init_app(app)

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

    @app.cli.command("reset-two-factor")
    @click.argument("email")
    def reset_two_factor(email: str) -> None:
        """Turn off an account's two-factor sign-in (lost phone and recovery codes)."""
        user = run_with_session(
            app, lambda session: two_factor.reset_from_the_command_line(session, email)
        )
        click.echo(f"Two-factor sign-in is off for {user.email}: the password alone logs in.")

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
                        storage=app.extensions["attachment_storage"],
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

    for queue in delivery_queues():
        app.cli.add_command(_delivery_commands(app, queue))

    @app.cli.command("backup")
    @click.argument("destination", type=click.Path(file_okay=False, path_type=Path))
    def backup_command(destination: Path) -> None:
        """Copy this SQLite instance (database and attachment files) into DESTINATION while it
        runs. PostgreSQL instances use pg_dump (docs/deploy.md)."""
        try:
            made = back_up(
                app.config["DATABASE_URL"], app.extensions["attachment_storage"], destination
            )
        except BackupRefused as refusal:
            raise click.ClickException(str(refusal)) from refusal
        click.echo(f"Database copied to {made.database}.")
        if made.attachments is not None:
            click.echo(f"{made.files} attachment files copied to {made.attachments}.")

    @app.cli.command("prune-activity")
    @click.option(
        "--older-than",
        "days",
        type=click.IntRange(min=1),
        required=True,
        help="Delete activity older than this many days.",
    )
    def prune_activity_command(days: int) -> None:
        """Delete the activity log beyond a retention window. Live clients further behind are
        told to reload; issue timelines show what is left."""
        pruned = run_with_session(
            app, lambda session: prune_activity(session, older_than=timedelta(days=days))
        )
        click.echo(f"Deleted {pruned} activity rows older than {days} days.")
