"""Imports from GitHub and Jira exports, written all or nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Invalid
from app.models import (
    Activity,
    Comment,
    Issue,
    IssueType,
    Label,
    Milestone,
    Priority,
    Project,
    User,
    WorkflowStatus,
)
from app.services import importing, login_sessions, projects, search
from app.services.importing.records import ImportRefused
from app.services.importing.writer import write_import
from app.services.transaction import use_case
from tests.factories import make_issue, make_project, make_user
from tests.importing.exports import (
    github_comment,
    github_issue,
    jira_csv,
    jira_row,
    write_github,
    zip_folder,
)


def github_export(folder: Path, ann: str = "ann") -> Path:
    return write_github(
        folder,
        [
            github_issue(3, "Third", body="Follows #1 and #2; see also PR #7"),
            github_issue(
                1, "Rocket explodes", labels=["bug"], milestone="v1", user="mona", assignee=ann
            ),
            github_issue(2, "Closed one", state="closed", closed_at="2024-02-01T08:00:00Z"),
            github_issue(7, "A pull request", pull_request=True),
        ],
        [github_comment(1, "Same as #3", user=ann), github_comment(7, "on the PR")],
        labels=[{"id": 1, "name": "bug", "color": "d73a4a", "description": "Something broke"}],
        milestones=[
            {
                "number": 1,
                "title": "v1",
                "state": "open",
                "description": "First",
                "due_on": "2024-06-30T07:00:00Z",
                "closed_at": None,
            }
        ],
    )


async def counts(session: AsyncSession, project_id: int) -> dict[str, int]:
    async def count(model, *where) -> int:
        return await session.scalar(select(func.count()).select_from(model).where(*where))

    await session.commit()
    fresh = await session.get(Project, project_id, populate_existing=True)
    return {
        "issues": await count(Issue, Issue.project_id == project_id),
        "comments": await count(Comment),
        "labels": await count(Label, Label.project_id == project_id),
        "milestones": await count(Milestone, Milestone.project_id == project_id),
        "statuses": await count(WorkflowStatus, WorkflowStatus.project_id == project_id),
        "activity": await count(Activity, Activity.project_id == project_id),
        "placeholders": await count(User, User.is_placeholder),
        "last_number": fresh.last_issue_number,
        "last_seq": fresh.last_event_seq,
    }


async def test_a_github_export_is_imported_in_order_with_its_references_rewritten(
    session: AsyncSession, tmp_path: Path
) -> None:
    owner = await make_user(session)
    ann = await make_user(session, email="ann@example.com")
    project = await make_project(session, owner, key="WEB")
    await make_issue(session, owner, project, title="Already here")  # WEB-1
    data = importing.read_export(
        "github", zip_folder(github_export(tmp_path / "gh", ann.handle), tmp_path / "gh.zip")
    )
    summary = await importing.import_now(session, owner, project.id, data)

    assert summary["imported"] == 3 and summary["first_key"] == "WEB-2"
    assert summary["skipped"] == [
        {"where": "issues.json record 4 (#7)", "reason": "a pull request, not an issue"},
        {"where": "comments.json record 2", "reason": "a comment on pull request #7"},
    ]
    rows = list(
        await session.scalars(
            select(Issue).where(Issue.project_id == project.id).order_by(Issue.number)
        )
    )
    assert [(i.number, i.title, i.external_key) for i in rows] == [
        (1, "Already here", None),
        (2, "Rocket explodes", "#1"),
        (3, "Closed one", "#2"),
        (4, "Third", "#3"),
    ]
    assert rows[3].description == "Follows WEB-2 and WEB-3; see also PR #7"
    comment = await session.scalar(select(Comment).where(Comment.issue_id == rows[1].id))
    assert comment.body == "Same as WEB-4" and comment.author_id == ann.id
    assert comment.created_at.isoformat() == "2024-01-03T09:30:00+00:00"
    assert rows[1].created_at.isoformat() == "2024-01-02T10:00:00+00:00"
    statuses = {s.id: s for s in await session.scalars(select(WorkflowStatus))}
    assert statuses[rows[1].status_id].name == "Backlog"  # the first "to do" column
    assert statuses[rows[2].status_id].name == "Done"
    assert rows[1].assignee_id == ann.id
    mona = await session.get(User, rows[1].reporter_id)
    assert mona.is_placeholder and mona.password_hash is None
    assert mona.email.endswith("@placeholder.invalid")
    assert (
        summary["placeholders"]
        == [mona.email, (await session.get(User, rows[2].reporter_id)).email]
        or len(summary["placeholders"]) == 2
    )
    label = await session.scalar(select(Label).where(Label.project_id == project.id))
    assert (label.name, label.color) == ("bug", "#d73a4a")
    milestone = await session.scalar(select(Milestone).where(Milestone.project_id == project.id))
    assert milestone.title == "v1" and str(milestone.due_date) == "2024-06-30"
    assert rows[1].milestone_id == milestone.id
    # The event log: one creation per issue, the closing at its date, the import itself.
    kinds = list(
        await session.scalars(
            select(Activity.kind).where(Activity.project_id == project.id).order_by(Activity.seq)
        )
    )
    assert kinds[-5:] == [
        "issue.created",
        "issue.created",
        "issue.updated",
        "issue.created",
        "project.imported",
    ]
    seqs = list(
        await session.scalars(
            select(Activity.seq).where(Activity.project_id == project.id).order_by(Activity.seq)
        )
    )
    assert seqs == list(range(1, len(seqs) + 1))
    # Numbers stay gap-free after an import.
    after = await make_issue(session, owner, project)
    assert after.number == 5


async def test_the_old_key_is_searchable(session: AsyncSession, tmp_path: Path) -> None:
    owner = await make_user(session)
    project = await make_project(session, owner, key="NEW")
    csv_file = tmp_path / "jira.csv"
    csv_file.write_text(jira_csv([jira_row("ABC-123", "Login fails"), jira_row("ABC-7", "Other")]))
    await importing.import_now(session, owner, project.id, importing.read_export("jira", csv_file))
    found = await search.search_issues(session, owner, search.parse_query("imported:ABC-123"))
    assert [issue.title for issue in found.issues] == ["Login fails"]
    found = await search.search_issues(session, owner, search.parse_query("ABC-123"))
    assert [issue.title for issue in found.issues] == ["Login fails"]


async def test_a_jira_csv_maps_statuses_types_priorities_and_comments(
    session: AsyncSession, tmp_path: Path
) -> None:
    owner = await make_user(session)
    jdoe = await make_user(session, email="jdoe@example.com")
    project = await make_project(session, owner, key="OPS")
    csv_file = tmp_path / "jira.csv"
    csv_file.write_text(
        jira_csv(
            [
                jira_row(
                    "ABC-1",
                    "First",
                    status="In Progress",
                    priority="Highest",
                    labels=("backend", "urgent"),
                    reporter="jdoe@example.com",
                    description="Line one\nline two; with a semicolon",
                    comments=(
                        "04/Dec/26 6:00 PM;jdoe@example.com;Looks bad; really",
                        "05/Dec/26 9:15 AM;someone;Fixed?",
                    ),
                ),
                jira_row("ABC-2", "Second", type="Spike", status="Waiting for QA", priority="P0"),
                jira_row("ABC-3", "Third", type="Story", status="Resolved", priority="Low"),
            ]
        )
    )
    summary = await importing.import_now(
        session, owner, project.id, importing.read_export("jira", csv_file)
    )
    assert summary["imported"] == 3
    assert summary["statuses_added"] == ["Waiting for QA (todo)", "Resolved (done)"]
    assert summary["unknown_values"] == [
        'type "Spike" (imported as task)',
        'priority "P0" (imported as none)',
    ]
    rows = list(
        await session.scalars(
            select(Issue).where(Issue.project_id == project.id).order_by(Issue.number)
        )
    )
    statuses = {s.id: s for s in await session.scalars(select(WorkflowStatus))}
    assert [statuses[i.status_id].name for i in rows] == [
        "In progress",
        "Waiting for QA",
        "Resolved",
    ]
    assert statuses[rows[2].status_id].category == "done"
    assert [(i.type, i.priority) for i in rows] == [
        (IssueType.BUG, Priority.URGENT),
        (IssueType.TASK, Priority.NONE),
        (IssueType.FEATURE, Priority.LOW),
    ]
    assert rows[0].reporter_id == jdoe.id
    assert rows[0].description == "Line one\nline two; with a semicolon"
    assert rows[0].created_at.isoformat() == "2026-12-04T17:53:00+00:00"
    comments = list(
        await session.scalars(
            select(Comment).where(Comment.issue_id == rows[0].id).order_by(Comment.id)
        )
    )
    assert [c.body for c in comments] == ["Looks bad; really", "Fixed?"]
    assert comments[0].author_id == jdoe.id
    assert (await session.get(User, comments[1].author_id)).is_placeholder
    labels = set(await session.scalars(select(Label.name).where(Label.project_id == project.id)))
    assert labels == {"backend", "urgent"}


ISSUE = {"number": 1, "title": "a", "state": "open", "created_at": "2024-01-01T00:00:00Z"}


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"issues.json": '[{"number": 1,'}, "issues.json is not JSON (line 1"),
        ({"issues.json": "{}"}, "issues.json must be a JSON array"),
        ({"comments.json": "[]"}, "has no issues.json"),
        (
            {"issues.json": json.dumps([ISSUE, {**ISSUE, "number": 23, "state": "shut"}])},
            'issues.json record 2 (#23): "state" must be "open" or "closed"',
        ),
        (
            {"issues.json": json.dumps([{**ISSUE, "number": 4, "created_at": "yesterday"}])},
            'issues.json record 1 (#4): "created_at" is not a date and time: "yesterday"',
        ),
        ({"issues.json": "Summary,Issue key,Status\nx,ABC-1,Open\n"}, "issues.json is not JSON"),
    ],
)
def test_a_bad_github_export_is_refused_naming_the_record(
    tmp_path: Path, files: dict[str, str], message: str
) -> None:
    for name, content in files.items():
        (tmp_path / name).write_text(content)
    with pytest.raises(ImportRefused) as refused:
        importing.read_export("github", tmp_path)
    assert message in refused.value.message


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            jira_csv([jira_row("ABC-1", "x", created="31/Feb/26 5:53 PM")]),
            'line 2 (ABC-1): unknown date "31/Feb/26 5:53 PM"',
        ),
        ("ABC-1,Login fails,Open\n", "line 1: this is not Jira's CSV export"),
        ('[{"number": 1}]', "looks like JSON"),
        ("", "is empty"),
        (
            jira_csv([jira_row("ABC-1", "x"), jira_row("ABC-1", "y")]),
            "line 3 (ABC-1): issue key ABC-1 is also on line 2",
        ),
        (
            jira_csv([jira_row("ABC-1", "x", comments=("just words", ""))]),
            'a comment must be "date;author;body"',
        ),
        (jira_csv([jira_row("ABC-1", "")]), 'line 2 (ABC-1): "Summary" is empty'),
        ('Summary,Issue key,Status\n"unclosed,ABC-1,Open\n', "broken CSV"),
    ],
)
def test_a_bad_jira_csv_is_refused_naming_the_line(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "export.csv"
    path.write_text(content)
    with pytest.raises(ImportRefused) as refused:
        importing.read_export("jira", path)
    assert message in refused.value.message


def test_a_jira_csv_given_as_github_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text(jira_csv([jira_row("ABC-1", "x")]))
    with pytest.raises(ImportRefused, match=r"neither a folder nor a \.zip"):
        importing.read_export("github", path)


async def test_a_failure_midway_leaves_nothing(session: AsyncSession, tmp_path: Path) -> None:
    owner = await make_user(session)
    project = await make_project(session, owner, key="HALF")
    project_id = project.id
    before = await counts(session, project_id)
    rows = [
        jira_row(
            f"ABC-{n}",
            f"Issue {n}",
            status="Brand new",
            labels=("x", ""),
            comments=("04/Dec/26 6:00 PM;ghost;hello", ""),
            reporter="ghost",
        )
        for n in range(1, 1201)
    ]
    path = tmp_path / "big.csv"
    path.write_text(jira_csv(rows))
    data = importing.read_export("jira", path)

    async def fail_after_two_batches(processed: int) -> None:
        if processed >= 1000:
            raise RuntimeError("the disk is full")

    @use_case
    async def run(session: AsyncSession) -> None:
        await write_import(session, owner, project_id, data, fail_after_two_batches)

    with pytest.raises(RuntimeError):
        await run(session)
    assert await counts(session, project_id) == before
    project = await session.get(Project, project_id)
    assert (await make_issue(session, owner, project)).number == 1


async def test_a_placeholder_is_merged_into_a_real_account(
    session: AsyncSession, tmp_path: Path
) -> None:
    owner = await make_user(session)
    project = await make_project(session, owner, key="MRG")
    path = tmp_path / "jira.csv"
    path.write_text(
        jira_csv(
            [
                jira_row(
                    "ABC-1",
                    "x",
                    reporter="bob",
                    assignee="bob",
                    comments=("04/Dec/26 6:00 PM;bob;hi", ""),
                )
            ]
        )
    )
    await importing.import_now(session, owner, project.id, importing.read_export("jira", path))
    placeholder_id = await session.scalar(select(User.id).where(User.is_placeholder))
    project_id = project.id
    real = await make_user(session, email="bob@example.com")
    with pytest.raises(Invalid):  # the wrong way round
        await importing.merge_placeholder(session, real.id, placeholder_id)
    await importing.merge_placeholder(session, placeholder_id, real.id)
    issue = await session.scalar(select(Issue).where(Issue.project_id == project_id))
    assert (issue.reporter_id, issue.assignee_id) == (real.id, real.id)
    assert (
        await session.scalar(select(Comment.author_id).where(Comment.issue_id == issue.id))
        == real.id
    )
    assert await session.get(User, placeholder_id, populate_existing=True) is None
    # A second import that names bob again finds the real account by his login.
    path.write_text(jira_csv([jira_row("ABC-2", "y", reporter="bob@example.com")]))
    await importing.import_now(session, owner, project_id, importing.read_export("jira", path))
    assert (
        await session.scalar(select(func.count()).select_from(User).where(User.is_placeholder)) == 0
    )


async def test_a_placeholder_cannot_log_in(session: AsyncSession, tmp_path: Path, app) -> None:
    owner = await make_user(session)
    project = await make_project(session, owner, key="PLC")
    path = tmp_path / "jira.csv"
    path.write_text(jira_csv([jira_row("ABC-1", "x", reporter="carol")]))
    await importing.import_now(session, owner, project.id, importing.read_export("jira", path))
    placeholder = await session.scalar(select(User).where(User.is_placeholder))
    assert placeholder.email == "carol@placeholder.invalid" and not placeholder.notify_by_email
    assert placeholder.password_hash is None
    email = placeholder.email
    with pytest.raises(Invalid, match="No account uses that address"):
        await projects.add_member(session, owner, project.id, email=email, role="member")
    for password in ("", "anything at all"):
        with pytest.raises(Invalid):
            await login_sessions.log_in(
                session,
                app.extensions["account_settings"],
                email=email,
                password=password,
            )


def test_only_references_to_imported_issues_are_rewritten() -> None:
    from app.services.importing.writer import _rewrite

    keys = {12: "WEB-3", 4: "WEB-1"}
    text = "Fixes #12, see #4 and #99; not &#12; nor issues/#12 nor a#4 nor ##12."
    assert _rewrite(text, keys) == (
        "Fixes WEB-3, see WEB-1 and #99; not &#12; nor issues/#12 nor a#4 nor ##12."
    )
