"""Export a whole project and restore it: every row of every project table comes back, column
by column (only ids differ), and every file byte for byte; bad archives are refused by line."""

from __future__ import annotations

import json
import zipfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from quart import Quart
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import create_engine, migrations
from app.errors import Conflict
from app.models import (
    Activity,
    Attachment,
    Comment,
    Issue,
    IssueLabel,
    IssueSearch,
    Label,
    Milestone,
    Project,
    RelationType,
    Role,
    User,
    WorkflowStatus,
)
from app.services import comments, issues, milestones, projects, relations
from app.services.importing import archive
from app.services.importing.archive import export as archive_export
from app.services.importing.people import placeholder_email
from app.services.importing.records import ImportRefused, PersonRef
from app.storage import AttachmentStorage
from tests.attachment_fixtures import attachments_app, stored_files
from tests.commands.test_cli import run_quart
from tests.conftest import (
    create_scratch_postgres_database,
    drop_scratch_postgres_database,
    postgres_admin_url,
)
from tests.factories import add_member, make_attachment, make_issue, make_project, make_user
from tests.mailcatcher import MailCatcher

EMAILS = ("ann@example.com", "bob@example.com", "cy@example.com")


@pytest_asyncio.fixture
async def app(database_url: str, mailbox: MailCatcher, tmp_path: Path) -> AsyncIterator[Quart]:
    async with attachments_app(database_url, mailbox, tmp_path) as made:
        yield made


def storage(app: Quart) -> AttachmentStorage:
    return app.extensions["attachment_storage"]


async def build_rich_project(app: Quart, session: AsyncSession, key: str = "RICH") -> int:
    """A project with a bit of everything the app records."""
    ann, bob, cy = [await make_user(session, email=email) for email in EMAILS]
    project = await make_project(session, ann, key=key)
    project_id = project.id
    await add_member(session, project, bob, Role.ADMIN)
    await add_member(session, project, cy, Role.VIEWER)
    await projects.add_status(session, ann, project_id, name="Review", category="in_progress")
    bug = await projects.save_label(session, ann, project_id, name="bug", color="#ff0000")
    ui = await projects.save_label(session, ann, project_id, name="ui", color="#00ff00")
    v1 = await milestones.create_milestone(
        session, ann, project_id, title="v1", description="First", due_date=date(2027, 1, 5)
    )
    v2 = await milestones.create_milestone(session, ann, project_id, title="v2")
    parent = await issues.create_issue(
        session,
        ann,
        project_id,
        title="Rocket",
        description="Big one",
        type="feature",
        priority="high",
        assignee_id=bob.id,
        label_ids=[bug.id, ui.id],
        due_date=date(2027, 2, 1),
        milestone_id=v1.id,
        estimate=5,
    )
    child = await issues.create_issue(
        session, bob, project_id, title="Fuel", parent=f"{key}-{parent.number}"
    )
    third = await make_issue(session, ann, project, title="Third")
    statuses = await projects.workflow(session, project_id)
    done = next(s for s in statuses if s.category == "done")
    await issues.update_issue(
        session,
        ann,
        third.id,
        issues.IssueChanges(status_id=done.id, title="Third, done", milestone_id=v1.id),
        expected_version=None,
    )
    await relations.add_relation(
        session, ann, parent.id, RelationType.BLOCKS.value, f"{key}-{child.number}"
    )
    await relations.add_relation(
        session, bob, third.id, RelationType.RELATES_TO.value, f"{key}-{parent.number}"
    )
    kept = await comments.add_comment(session, bob, parent.id, "Looks heavy")
    await comments.edit_comment(session, bob, kept.id, "Looks heavy, see the picture")
    gone = await comments.add_comment(session, ann, parent.id, "Oops")
    await comments.delete_comment(session, ann, gone.id)
    await make_attachment(session, storage(app), ann, parent)  # a PNG: with a thumbnail
    await make_attachment(
        session,
        storage(app),
        bob,
        parent,
        data=b"plain words\n",
        file_name="notes.txt",
        comment_id=kept.id,
    )
    await issues.set_watching(session, cy, parent.id, True)
    await issues.set_watching(session, bob, child.id, False)
    await milestones.close_milestone(session, ann, project_id, v1.id, move_to=v2.id)
    await projects.update_settings(
        session, ann, project_id, name="Rich things", description="All", is_public=True
    )
    return project_id


async def project_rows(
    app: Quart, session: AsyncSession, project_id: int, aliases: dict[str, str] | None = None
) -> dict[str, Any]:
    """Every row of every project table, ids replaced by numbers, names and addresses (a
    placeholder by the address it stands for), storage keys by the bytes; compared as sets.
    Only this project's rows give names: an id pointing into another project reads None."""
    aliases = aliases or {}
    people = {
        user_id: aliases.get(email, email)
        for user_id, email in await session.execute(select(User.id, User.email))
    }
    issue_numbers = dict(
        (
            await session.execute(
                select(Issue.id, Issue.number).where(Issue.project_id == project_id)
            )
        ).all()
    )
    names = {
        "user": people,
        "issue": issue_numbers,
        "workflow_status": dict(
            (
                await session.execute(
                    select(WorkflowStatus.id, WorkflowStatus.name).where(
                        WorkflowStatus.project_id == project_id
                    )
                )
            ).all()
        ),
        "milestone": dict(
            (
                await session.execute(
                    select(Milestone.id, Milestone.title).where(Milestone.project_id == project_id)
                )
            ).all()
        ),
        "label": dict(
            (
                await session.execute(
                    select(Label.id, Label.name).where(Label.project_id == project_id)
                )
            ).all()
        ),
        "comment": {
            c.id: (issue_numbers.get(c.issue_id), c.created_at.isoformat())
            for c in await session.execute(
                select(Comment.id, Comment.issue_id, Comment.created_at).where(
                    Comment.issue_id.in_(issue_numbers)
                )
            )
        },
        "attachment": {
            a.id: (issue_numbers.get(a.issue_id), a.file_name, a.created_at.isoformat())
            for a in await session.execute(
                select(
                    Attachment.id, Attachment.issue_id, Attachment.file_name, Attachment.created_at
                )
            )
        },
    }
    tables_of = {"person": "user", "status": "workflow_status"}
    project = (
        await session.execute(select(Project.__table__).where(Project.id == project_id))
    ).one()
    rows: dict[str, Any] = {
        "project": {k: v for k, v in project._mapping.items() if k not in ("id", "key")}
    }
    tables = [part.table for part in archive.PARTS] + [IssueLabel, IssueSearch.__table__]
    for table in tables:
        query = select(table)
        if "project_id" in table.c:
            query = query.where(table.c.project_id == project_id)
        elif "source_id" in table.c:
            query = query.where(table.c.source_id.in_(issue_numbers))
        else:
            query = query.where(table.c.issue_id.in_(issue_numbers))
        found = []
        for row in await session.execute(query):
            values = {}
            for column in table.columns:
                value = row._mapping[column.name]
                if column.name in ("id", "project_id"):
                    continue
                foreign = [key.column.table.name for key in column.foreign_keys]
                if foreign and value is not None:
                    value = names[foreign[0]][value]
                if column.name == "storage_key":
                    value = await read_stored(app, value, row._mapping["has_thumbnail"])
                if column.name == "document":
                    value = str(value)
                if column.name == "payload":
                    # Ids inside payloads name rows too: by the same names (None once gone).
                    value = json.loads(json.dumps(value))
                    for container, key, target in archive.payload_ids(row.kind, value):
                        container[key] = names[tables_of.get(target, target)].get(container[key])
                values[column.name] = value
            found.append(json.dumps(values, sort_keys=True, default=str))
        rows[table.name] = sorted(found)
    return rows


async def read_stored(app: Quart, key: str, thumbnail: bool) -> str:
    keys = [key] + ([key + ".thumb.png"] if thumbnail else [])
    parts = []
    for stored_key in keys:
        data = b"".join([chunk async for chunk in storage(app).stream(stored_key)])
        parts.append(data.hex())
    return "/".join(parts)


async def export_to(app: Quart, session: AsyncSession, project_id: int, target: Path) -> Path:
    await archive.export_project(session, storage(app), project_id, target)
    await session.commit()
    return target


async def restore(
    app: Quart, session: AsyncSession, path: Path, actor: User | None = None, key: str | None = None
) -> dict[str, Any]:
    checked = await archive.read_archive_in_thread(path)
    return await archive.restore_now(session, storage(app), actor, checked, key=key)


async def new_project_id(session: AsyncSession, key: str) -> int:
    project_id = await session.scalar(select(Project.id).where(Project.key == key))
    await session.commit()
    assert project_id is not None
    return project_id


def assert_same(original: dict[str, Any], restored: dict[str, Any]) -> None:
    assert original.keys() == restored.keys()
    for table in original:
        assert restored[table] == original[table], table


async def test_a_project_restores_under_another_key_with_every_row_and_file(
    app: Quart, session: AsyncSession, tmp_path: Path
) -> None:
    project_id = await build_rich_project(app, session)
    original = await project_rows(app, session, project_id)
    assert len(original["activity"]) > 15 and len(original["attachment"]) == 2
    path = await export_to(app, session, project_id, tmp_path / "rich.zip")
    lines = list(archive.iter_lines(path))
    assert lines[0] == {
        "type": "archive",
        "format": "issues-archive",
        "version": 1,
        "exported_from": "RICH",
    }
    assert all("_id" not in name for line in lines[1:] for name in line)  # no ids at all
    with pytest.raises(Conflict, match="RICH is taken"):
        await restore(app, session, path)
    files_before = stored_files(app)
    summary = await restore(app, session, path, key="COPY")
    assert summary["restored"]["issue"] == 3 and summary["placeholders"] == []
    restored_id = await new_project_id(session, "COPY")
    assert_same(original, await project_rows(app, session, restored_id))
    assert len(stored_files(app)) == len(files_before) + 3  # two files and a thumbnail
    # The counters follow on: the next issue is RICH-4's twin, COPY-4, and its event seq + 1.
    last_seq = await session.scalar(
        select(func.max(Activity.seq)).where(Activity.project_id == restored_id)
    )
    await session.commit()
    ann = await session.scalar(select(User).where(User.email == EMAILS[0]))
    session.expunge(ann)
    await session.commit()
    made = await issues.create_issue(session, ann, restored_id, title="After")
    assert made.number == 4
    assert (
        await session.scalar(
            select(func.max(Activity.seq)).where(Activity.project_id == restored_id)
        )
        == last_seq + 1
    )


@asynccontextmanager
async def other_instance(
    backend: str, mailbox: MailCatcher, tmp_path: Path, name: str
) -> AsyncIterator[Quart]:
    """An empty instance of its own: a second SQLite file, or a scratch PostgreSQL database."""
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / (name + '.db')}"
        admin = None
    else:
        admin = postgres_admin_url()
        if admin is None:
            pytest.skip("needs PostgreSQL")
        url = await create_scratch_postgres_database(admin)
    engine = create_engine(url)
    await migrations.upgrade(engine)
    await engine.dispose()
    try:
        async with attachments_app(url, mailbox, tmp_path / name) as made:
            yield made
    finally:
        if admin is not None:
            await drop_scratch_postgres_database(admin, url)


async def round_trip_into(
    app: Quart, session: AsyncSession, target_app: Quart, tmp_path: Path, *, same_backend: bool
) -> None:
    project_id = await build_rich_project(app, session)
    original = await project_rows(app, session, project_id)
    path = await export_to(app, session, project_id, tmp_path / "rich.zip")
    async with target_app.app_context():
        target: AsyncSession = target_app.extensions["database"].sessionmaker()
        async with target:
            # Two of the three people have accounts there; the third becomes a placeholder.
            ann = await make_user(target, email=EMAILS[0])
            await make_user(target, email=EMAILS[1])
            summary = await restore(target_app, target, path, actor=ann)
            assert summary["placeholders"] == [EMAILS[2]]
            assert summary["skipped"][0]["reason"] == f"member {EMAILS[2]} has no account"
            restored_id = await new_project_id(target, "RICH")
            aliases = {placeholder_email(PersonRef(email=EMAILS[2])): EMAILS[2]}
            restored = await project_rows(target_app, target, restored_id, aliases)
    # The placeholder is no member (decision 0029): that one membership row is not restored.
    original["membership"] = [row for row in original["membership"] if EMAILS[2] not in row]
    if not same_backend:
        # The search document is an index in the backend's own form (tsvector or plain text):
        # rebuilt, one per issue, not copied.
        assert len(restored.pop("issue_search")) == len(original.pop("issue_search")) == 3
    assert_same(original, restored)


async def test_a_project_restores_into_an_empty_instance(
    app: Quart, session: AsyncSession, backend: str, mailbox: MailCatcher, tmp_path: Path
) -> None:
    async with other_instance(backend, mailbox, tmp_path, "second") as target_app:
        await round_trip_into(app, session, target_app, tmp_path, same_backend=True)


async def test_a_project_moves_between_sqlite_and_postgresql(
    app: Quart, session: AsyncSession, backend: str, mailbox: MailCatcher, tmp_path: Path
) -> None:
    """From the embedded default to PostgreSQL, and back."""
    if postgres_admin_url() is None:
        pytest.skip("needs PostgreSQL")
    other = "postgresql" if backend == "sqlite" else "sqlite"
    async with other_instance(other, mailbox, tmp_path, "other") as target_app:
        await round_trip_into(app, session, target_app, tmp_path, same_backend=False)


def rewrite(path: Path, target: Path, change: Any, drop: str | None = None) -> Path:
    """A copy of the archive with its records changed by `change(lines)`."""
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(target, "w") as out:
        for name in source.namelist():
            if name == drop:
                continue
            data = source.read(name)
            if name == archive.RECORDS:
                lines = [json.loads(line) for line in data.splitlines()]
                change(lines)
                data = "\n".join(json.dumps(line) for line in lines).encode() + b"\n"
            out.writestr(name, data)
    return target


def first(lines: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    return next(line for line in lines if line["type"] == kind)


def line_of(lines: list[dict[str, Any]], kind: str) -> int:
    return next(n for n, line in enumerate(lines, start=1) if line["type"] == kind)


async def test_bad_archives_are_refused_naming_the_line(
    app: Quart, session: AsyncSession, tmp_path: Path
) -> None:
    project_id = await build_rich_project(app, session)
    path = await export_to(app, session, project_id, tmp_path / "rich.zip")
    lines = [json.loads(line) for line in zipfile.ZipFile(path).read(archive.RECORDS).splitlines()]
    issue_line = line_of(lines, "issue")
    attachment = first(lines, "attachment")

    (tmp_path / "broken.zip").write_bytes(b"not a zip at all")
    cases: list[tuple[Path, str]] = [
        (tmp_path / "broken.zip", "This is not a project archive (.zip)"),
        (
            rewrite(path, tmp_path / "format.zip", lambda ls: ls[0].update(format="other")),
            "project.jsonl line 1: this is not an issues-archive file.",
        ),
        (
            rewrite(path, tmp_path / "version.zip", lambda ls: ls[0].update(version=2)),
            "project.jsonl line 1: archive version 2; this instance reads version 1.",
        ),
        (
            rewrite(path, tmp_path / "missing.zip", lambda ls: first(ls, "issue").pop("title")),
            f"project.jsonl line {issue_line}: the issue record lacks title.",
        ),
        (
            rewrite(
                path, tmp_path / "status.zip", lambda ls: first(ls, "issue").update(status="Nope")
            ),
            f"project.jsonl line {issue_line}: status names an unknown status 'Nope'.",
        ),
        (
            rewrite(
                path, tmp_path / "label.zip", lambda ls: first(ls, "issue").update(labels=["x"])
            ),
            f"project.jsonl line {issue_line}: labels name an unknown label 'x'.",
        ),
        (
            rewrite(
                path,
                tmp_path / "person.zip",
                lambda ls: first(ls, "issue").update(reporter="who@example.com"),
            ),
            f"project.jsonl line {issue_line}: reporter names an unknown person 'who@example.com'.",
        ),
        (
            rewrite(path, tmp_path / "file.zip", lambda ls: None, drop=attachment["file"]),
            f"project.jsonl line {line_of(lines, 'attachment')}: the file {attachment['file']} "
            "is not in the zip.",
        ),
        (
            rewrite(path, tmp_path / "twice.zip", lambda ls: ls.append(dict(first(ls, "issue")))),
            f"project.jsonl line {len(lines) + 1}: a second issue with the number 1.",
        ),
        (
            rewrite(path, tmp_path / "type.zip", lambda ls: ls.append({"type": "spaceship"})),
            f'project.jsonl line {len(lines) + 1}: unknown record type "spaceship".',
        ),
    ]
    for bad, message in cases:
        with pytest.raises(ImportRefused) as refused:
            await archive.read_archive_in_thread(bad)
        assert refused.value.message.startswith(message), (bad.name, refused.value.message)
    # Not JSON at all, on its line:
    with zipfile.ZipFile(tmp_path / "json.zip", "w") as out:
        out.writestr(archive.RECORDS, json.dumps(lines[0]) + "\n{oops\n")
    with pytest.raises(ImportRefused, match=r"project\.jsonl line 2: not a JSON record"):
        await archive.read_archive_in_thread(tmp_path / "json.zip")


async def test_a_restore_failing_midway_leaves_no_project_rows_or_files(
    app: Quart, session: AsyncSession, tmp_path: Path
) -> None:
    project_id = await build_rich_project(app, session)
    path = await export_to(app, session, project_id, tmp_path / "rich.zip")
    counts = {
        model.__tablename__: await session.scalar(select(func.count()).select_from(model))
        for model in (Project, Issue, Comment, Activity, Attachment, User, Label, Milestone)
    }
    await session.commit()
    files = stored_files(app)
    checked = await archive.read_archive_in_thread(path)
    # Two activity rows with one seq: the database refuses the second, after the files are in.
    activity = checked.records["activity"]
    activity[-1][1]["seq"] = activity[-2][1]["seq"]
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
        await archive.restore_now(session, storage(app), None, checked, key="HALF")
    assert {
        model.__tablename__: await session.scalar(select(func.count()).select_from(model))
        for model in (Project, Issue, Comment, Activity, Attachment, User, Label, Milestone)
    } == counts
    await session.commit()
    assert stored_files(app) == files


async def test_unknown_people_become_placeholders_and_the_restorer_owns_it(
    app: Quart, session: AsyncSession, tmp_path: Path
) -> None:
    project_id = await build_rich_project(app, session)
    path = await export_to(app, session, project_id, tmp_path / "rich.zip")
    renamed = rewrite(
        path,
        tmp_path / "renamed.zip",
        lambda ls: (
            [
                line.update(email="zed@elsewhere.example")
                for line in ls
                if line["type"] == "person" and line["email"] == EMAILS[2]
            ]
            and [
                line.update(user="zed@elsewhere.example")
                for line in ls
                if line.get("user") == EMAILS[2]
            ]
        ),
    )
    owner = await make_user(session, email="restorer@example.com")
    summary = await restore(app, session, renamed, actor=owner, key="ZED")
    assert summary["placeholders"] == ["zed@elsewhere.example"]
    restored_id = await new_project_id(session, "ZED")
    members = {m.user.email: m.role for m in await projects.members(session, restored_id)}
    await session.commit()
    assert members == {EMAILS[0]: "owner", EMAILS[1]: "admin", "restorer@example.com": "owner"}
    placeholder = await session.scalar(
        select(User).where(
            User.email == placeholder_email(PersonRef(email="zed@elsewhere.example"))
        )
    )
    assert placeholder is not None and placeholder.is_placeholder


async def test_the_export_streams_big_projects_in_batches(
    app: Quart, session: AsyncSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More issues than a batch: every one is exported, in number order."""
    monkeypatch.setattr(archive_export, "BATCH", 7)
    owner = await make_user(session)
    project = await make_project(session, owner, key="BIG")
    for _ in range(20):
        await make_issue(session, owner, project)
    path = await export_to(app, session, project.id, tmp_path / "big.zip")
    numbers = [line["number"] for line in archive.iter_lines(path) if line["type"] == "issue"]
    assert numbers == list(range(1, 21))
    await restore(app, session, path, key="BIG2")
    copy_id = await new_project_id(session, "BIG2")
    assert_same(
        await project_rows(app, session, project.id), await project_rows(app, session, copy_id)
    )


async def test_the_commands_export_and_restore(
    app: Quart, session: AsyncSession, database_url: str, tmp_path: Path
) -> None:
    project_id = await build_rich_project(app, session, key="CLI")
    original = await project_rows(app, session, project_id)
    await session.commit()
    files = {"ATTACHMENT_DIR": str(tmp_path / "files")}
    target = tmp_path / "cli.zip"
    code, output = await run_quart(database_url, "export", "cli", str(target), **files)
    assert code == 0, output
    assert "CLI written to" in output and "3 issue" in output
    code, output = await run_quart(database_url, "restore", str(target), **files)
    assert code != 0 and "The key CLI is taken" in output
    code, output = await run_quart(
        database_url, "restore", str(target), "--key", "cli2", "--as", EMAILS[0], **files
    )
    assert code == 0 and "restored CLI2: " in output, output
    restored_id = await new_project_id(session, "CLI2")
    assert_same(original, await project_rows(app, session, restored_id))
    (tmp_path / "junk.zip").write_bytes(b"junk")
    code, output = await run_quart(database_url, "restore", str(tmp_path / "junk.zip"), **files)
    assert code != 0 and "This is not a project archive (.zip)" in output
