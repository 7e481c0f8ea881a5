"""Imports at 10,000 issues: a GitHub export and a Jira CSV, run through the import runner.

`.venv/bin/python -m bench.imports [--database-url URL] [--issues 10000]` builds both exports in a
temporary folder (each issue with two comments, labels, a milestone; a tenth closed; a few #12
references), migrates a scratch database (a temporary SQLite file unless --database-url is given;
that database is emptied first), queues each export as a job and times the runner: reading and
checking the file (in a thread), and the one transaction that writes it. Goal: under a minute each.
Then it exports the GitHub project as an archive (decision 0030) and restores it as a job under
another key, timing both.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import tempfile
import time
import zipfile
from pathlib import Path

from app import create_app
from app.config import normalise_database_url
from app.db import create_engine, migrations, utcnow
from app.models import ImportJob, Project, User
from app.services import importing, projects
from app.services.importing import archive

API = "https://api.github.com/repos/acme/rocket"


def github_export(folder: Path, count: int) -> Path:
    issues, comments = [], []
    for number in range(1, count + 1):
        closed = number % 10 == 0
        issues.append(
            {
                "url": f"{API}/issues/{number}",
                "id": 10_000_000 + number,
                "number": number,
                "title": f"Rocket issue {number}: the engine stalls at altitude",
                "user": {"login": f"dev{number % 50}", "id": number % 50},
                "labels": [{"name": f"area-{number % 8}", "color": "f29513"}],
                "state": "closed" if closed else "open",
                "assignee": {"login": f"dev{number % 7}"} if number % 3 else None,
                "milestone": {"number": 1 + number % 4, "title": f"v{1 + number % 4}.0"},
                "comments": 2,
                "created_at": "2024-01-02T10:00:00Z",
                "updated_at": "2024-01-05T10:00:00Z",
                "closed_at": "2024-01-05T10:00:00Z" if closed else None,
                "body": f"Seen after #{max(1, number - 1)}. Steps:\n\n1. launch\n2. climb\n" * 3,
            }
        )
        for place in range(2):
            comments.append(
                {
                    "id": 20_000_000 + number * 2 + place,
                    "issue_url": f"{API}/issues/{number}",
                    "user": {"login": f"dev{(number + place) % 50}"},
                    "body": f"Also happens on build {place} (like #{number})",
                    "created_at": "2024-01-03T09:30:00Z",
                }
            )
    archive = folder / "github.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
        out.writestr("export/issues.json", json.dumps(issues))
        out.writestr("export/comments.json", json.dumps(comments))
    return archive


def jira_export(folder: Path, count: int) -> Path:
    path = folder / "jira.csv"
    statuses = ("To Do", "In Progress", "Done", "Waiting for QA")
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(
            [
                "Summary",
                "Issue key",
                "Issue id",
                "Issue Type",
                "Status",
                "Priority",
                "Assignee",
                "Reporter",
                "Created",
                "Updated",
                "Labels",
                "Labels",
                "Description",
                "Comment",
                "Comment",
            ]
        )
        for number in range(1, count + 1):
            writer.writerow(
                [
                    f"Payment issue {number}: the card form times out",
                    f"PAY-{number}",
                    str(100_000 + number),
                    ("Bug", "Story", "Task")[number % 3],
                    statuses[number % 4],
                    ("High", "Medium", "Low")[number % 3],
                    f"dev{number % 7}",
                    f"dev{number % 50}",
                    "04/Dec/26 5:53 PM",
                    "05/Dec/26 9:10 AM",
                    f"team-{number % 5}",
                    "payments",
                    "The form spins, then fails.\nSeen on Chrome; also on Firefox.",
                    f"04/Dec/26 6:00 PM;dev{number % 9};Reproduced; see logs",
                    "05/Dec/26 8:00 AM;dev1;Fixed in the next build",
                ]
            )
    return path


async def main(database_url: str | None, count: int) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        url = normalise_database_url(database_url or f"sqlite+aiosqlite:///{folder / 'bench.db'}")
        engine = create_engine(url)
        await migrations.downgrade(engine, "base")
        await migrations.upgrade(engine)
        await engine.dispose()
        app = create_app("testing", DATABASE_URL=url, IMPORT_DIR=str(folder / "imports"))
        started = time.perf_counter()
        sources = {"github": github_export(folder, count), "jira": jira_export(folder, count)}
        print(f"built both exports of {count:,} issues in {time.perf_counter() - started:.1f} s")
        rows = []
        async with app.test_app() as test_app:
            maker = test_app.app.extensions["database"].sessionmaker
            runner = test_app.app.extensions["import_runner"]
            async with maker() as session:
                owner = User(
                    email="owner@example.com",
                    handle="owner",
                    display_name="Owner",
                    email_verified_at=utcnow(),
                )
                session.add(owner)
                await session.commit()
                session.expunge(owner)
                for key in ("GH", "JIRA"):
                    await projects.create_project(session, owner, key=key, name=key)
            for kind, key in (("github", "GH"), ("jira", "JIRA")):
                async with maker() as session:
                    project_id = await session.scalar(
                        Project.__table__.select()
                        .with_only_columns(Project.id)
                        .where(Project.key == key)
                    )
                    job = await importing.queue_import(
                        session,
                        owner,
                        project_id,
                        kind=kind,
                        source_path=sources[kind],
                        source_name=sources[kind].name,
                    )
                    job_id = job.id
                size = sources[kind].stat().st_size
                started = time.perf_counter()
                data = await importing.read_export_in_thread(kind, sources[kind])
                parse = time.perf_counter() - started
                started = time.perf_counter()
                await runner.deliver_pending()
                whole = time.perf_counter() - started
                async with maker() as session:
                    finished = await session.get(ImportJob, job_id)
                    assert finished.status == "done", finished.error
                    summary = finished.summary
                rows.append(
                    f"| {kind} | {size / 1e6:.1f} MB | {summary['imported']:,} | "
                    f"{summary['comments']:,} | {parse:.1f} | {whole:.1f} |"
                )
                del data
            archive_rows = await export_and_restore(test_app.app, owner, folder)
    backend = url.split(":", 1)[0].split("+")[0]
    print(
        f"\nImports of {count:,} issues on {backend} (seconds; the runner's time includes "
        "reading the file again)\n"
    )
    print("| export | size | issues | comments | read + check | runner, whole job |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))
    print(f"\nThe GH project as an archive on {backend} (seconds)\n")
    print("| archive size | records | export | restore job (read + check + write) |")
    print("|---|---|---|---|")
    print(archive_rows)


async def export_and_restore(app: object, owner: User, folder: Path) -> str:
    """Export GH to a zip, then restore it as GH2 through the runner."""
    maker = app.extensions["database"].sessionmaker  # type: ignore[attr-defined]
    runner = app.extensions["import_runner"]  # type: ignore[attr-defined]
    storage = app.extensions["attachment_storage"]  # type: ignore[attr-defined]
    target = folder / "gh-archive.zip"
    async with maker() as session:
        project_id = await session.scalar(
            Project.__table__.select().with_only_columns(Project.id).where(Project.key == "GH")
        )
        started = time.perf_counter()
        counts = await archive.export_project(session, storage, project_id, target)
        await session.commit()
        exported = time.perf_counter() - started
        job = await importing.queue_restore(
            session, owner, source_path=target, source_name=target.name, key="GH2"
        )
        job_id = job.id
    size = target.stat().st_size
    started = time.perf_counter()
    await runner.deliver_pending()
    restored = time.perf_counter() - started
    async with maker() as session:
        finished = await session.get(ImportJob, job_id)
        assert finished.status == "done", finished.error
    return f"| {size / 1e6:.1f} MB | {sum(counts.values()):,} | {exported:.1f} | {restored:.1f} |"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--issues", type=int, default=10_000)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.database_url, arguments.issues))
