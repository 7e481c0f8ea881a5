"""`quart --app app import github DIR --project KEY`, `import jira FILE.csv --project KEY`,
`merge-person PLACEHOLDER_EMAIL REAL_EMAIL`, `export KEY FILE.zip` and `restore FILE.zip
[--key NEWKEY]`: the same services as the pages, run at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from quart import Quart
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.commands.running import run_with_session
from app.models import Project, User
from app.services import importing
from app.services.importing import archive


def describe_summary(summary: dict[str, Any]) -> list[str]:
    """The summary as the command prints it."""
    lines = [
        f"imported {summary['imported']} issues"
        + (f" ({summary['first_key']} to {summary['last_key']})" if summary["first_key"] else "")
        + f" and {summary['comments']} comments; skipped {len(summary['skipped'])}"
    ]
    lines += [f"  skipped {item['where']}: {item['reason']}" for item in summary["skipped"]]
    for title, name in (
        ("status added", "statuses_added"),
        ("label added", "labels_added"),
        ("milestone added", "milestones_added"),
        ("unknown value", "unknown_values"),
        ("placeholder", "placeholders"),
        ("shortened", "shortened"),
    ):
        lines += [f"  {title}: {item}" for item in summary.get(name, [])]
    return lines


def _import(app: Quart, kind: str, source: Path, project_key: str, actor_email: str) -> None:
    async def job(session: AsyncSession) -> dict[str, Any]:
        project = await session.scalar(select(Project).where(Project.key == project_key.upper()))
        if project is None:
            raise click.ClickException(f"No project with the key {project_key}.")
        actor: User | None = None
        if actor_email:
            actor = await importing.user_by_email(session, actor_email)
        project_id = project.id
        await session.commit()
        data = await importing.read_export_in_thread(kind, source)

        async def progress(processed: int) -> None:
            click.echo(f"  {processed} of {data.total}", err=True)

        return await importing.import_now(session, actor, project_id, data, progress)

    for line in describe_summary(run_with_session(app, job)):
        click.echo(line)


def init_app(app: Quart) -> None:
    @app.cli.group("import")
    def import_group() -> None:
        """Import another tracker's export into a project (all or nothing)."""

    @import_group.command("github")
    @click.argument("folder", type=click.Path(exists=True, path_type=Path))
    @click.option("--project", "project_key", required=True, help="The project's key.")
    @click.option("--as", "actor_email", default="", help="Who the activity log names.")
    def github(folder: Path, project_key: str, actor_email: str) -> None:
        """FOLDER (or a .zip of it) holds issues.json and optionally comments.json,
        labels.json, milestones.json: the REST API's arrays."""
        _import(app, "github", folder, project_key, actor_email)

    @import_group.command("jira")
    @click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option("--project", "project_key", required=True, help="The project's key.")
    @click.option("--as", "actor_email", default="", help="Who the activity log names.")
    def jira(csv_file: Path, project_key: str, actor_email: str) -> None:
        """CSV_FILE is Jira's CSV export (all fields)."""
        _import(app, "jira", csv_file, project_key, actor_email)

    @app.cli.command("merge-person")
    @click.argument("placeholder_email")
    @click.argument("real_email")
    def merge_person(placeholder_email: str, real_email: str) -> None:
        """Give a placeholder's issues, comments and events to a real account."""

        async def job(session: AsyncSession) -> str:
            placeholder = await importing.user_by_email(session, placeholder_email)
            real = await importing.user_by_email(session, real_email)
            placeholder_id, real_id = placeholder.id, real.id
            merged = await importing.merge_placeholder(session, placeholder_id, real_id)
            return merged.email

        click.echo(f"{placeholder_email} merged into {run_with_session(app, job)}.")

    @app.cli.command("export")
    @click.argument("project_key")
    @click.argument("target", type=click.Path(dir_okay=False, writable=True, path_type=Path))
    def export(project_key: str, target: Path) -> None:
        """Write the project's archive (decision 0030) to TARGET, a .zip."""

        async def job(session: AsyncSession) -> dict[str, int]:
            project = await session.scalar(
                select(Project).where(Project.key == project_key.upper())
            )
            if project is None:
                raise click.ClickException(f"No project with the key {project_key}.")
            counts = await archive.export_project(
                session, app.extensions["attachment_storage"], project.id, target
            )
            await session.commit()
            return counts

        counts = run_with_session(app, job)
        click.echo(
            f"{project_key.upper()} written to {target}: "
            + ", ".join(f"{count} {kind}" for kind, count in counts.items() if kind != "archive")
        )

    @app.cli.command("restore")
    @click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option("--key", "new_key", default="", help="Another key, if the archive's is taken.")
    @click.option("--as", "actor_email", default="", help="Who owns the restored project too.")
    def restore(source: Path, new_key: str, actor_email: str) -> None:
        """Restore a project archive as a new project (all or nothing)."""

        async def job(session: AsyncSession) -> dict[str, Any]:
            actor: User | None = None
            if actor_email:
                actor = await importing.user_by_email(session, actor_email)
                session.expunge(actor)
            await session.commit()
            checked = await archive.read_archive_in_thread(source)
            return await archive.restore_now(
                session,
                app.extensions["attachment_storage"],
                actor,
                checked,
                key=new_key or None,
            )

        summary = run_with_session(app, job)
        click.echo(
            f"restored {summary['key']}: "
            + ", ".join(f"{count} {kind}" for kind, count in summary["restored"].items())
        )
        for item in summary["skipped"]:
            click.echo(f"  skipped {item['where']}: {item['reason']}")
        for email in summary["placeholders"]:
            click.echo(f"  placeholder: {email}")
