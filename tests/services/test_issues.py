"""Issues: numbered with their activity row, edited on the version seen, bulk edits all or none."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Invalid
from app.models import Activity, Issue
from app.services import issues
from app.services.activity import activity_since
from app.services.issues import IssueChanges, StaleEdit
from tests.factories import add_member, make_issue, make_project, make_user
from tests.services.rows import count, statuses


async def test_issues_are_numbered_per_project(session: AsyncSession) -> None:
    alice = await make_user(session)
    web = await make_project(session, alice, key="WEB")
    api = await make_project(session, alice, key="API")
    first = await make_issue(session, alice, web)
    second = await make_issue(session, alice, web)
    other = await make_issue(session, alice, api)
    assert [first.key, second.key, other.key] == ["WEB-1", "WEB-2", "API-1"]
    assert first.version == 1
    assert second.position > first.position
    assert first.created_at.tzinfo is not None


async def test_creating_an_issue_writes_its_activity_row(session: AsyncSession) -> None:
    alice = await make_user(session)
    project = await make_project(session, alice, key="WEB")
    issue = await issues.create_issue(
        session, alice, project.id, title="Login is slow", priority="high", type="bug"
    )
    [_, created] = await activity_since(session, project.id, 0)
    assert created.kind == "issue.created"
    assert created.seq == 2
    assert created.issue_id == issue.id
    assert created.payload == {"number": 1, "title": "Login is slow", "status": "Backlog"}
    assert created.created_at.tzinfo is not None


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"title": "   "}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"title": "ok", "priority": "critical"}, "priority"),
        ({"title": "ok", "type": "epic"}, "type"),
        ({"title": "ok", "status_id": 999}, "status"),
        ({"title": "ok", "assignee_id": 999}, "assignee"),
        ({"title": "ok", "label_ids": [999]}, "labels"),
    ],
)
async def test_an_invalid_issue_writes_nothing_and_takes_no_number(
    session: AsyncSession, fields: dict, field: str
) -> None:
    alice = await make_user(session)
    project_id = (await make_project(session, alice)).id
    with pytest.raises(Invalid) as refusal:
        await issues.create_issue(session, alice, project_id, **fields)
    assert refusal.value.field == field
    assert await count(session, Issue) == 0
    assert await count(session, Activity) == 1  # only project.created
    issue = await issues.create_issue(session, alice, project_id, title="Valid")
    assert issue.number == 1


# --- Editing on versions ----------------------------------------------------------------------


async def test_an_edit_records_who_changed_what_from_what_to_what(session: AsyncSession) -> None:
    owner = await make_user(session, display_name="Ann")
    project = await make_project(session, owner)
    issue = await make_issue(session, owner, project, title="Old title")
    done = (await statuses(session, project.id))["Done"]
    updated = await issues.update_issue(
        session,
        owner,
        issue.id,
        IssueChanges(title="New title", status_id=done, priority="high", assignee_id=owner.id),
        expected_version=1,
    )
    assert updated.version == 2
    [change] = await session.scalars(select(Activity).where(Activity.kind == "issue.updated"))
    assert change.payload == {
        "version": 2,
        "changes": {
            "title": ["Old title", "New title"],
            "priority": ["none", "high"],
            "status": ["Backlog", "Done"],
            "assignee": ["", "Ann"],
        },
        "done": True,  # for a milestone's burn-up chart
    }


async def test_a_stale_edit_is_refused_with_what_changed_and_nothing_is_overwritten(
    session: AsyncSession,
) -> None:
    ann = await make_user(session, display_name="Ann")
    bob = await make_user(session, display_name="Bob")
    project = await make_project(session, ann)
    await add_member(session, project, bob)
    issue = await make_issue(session, ann, project, title="Original")
    issue_id = issue.id
    # Both loaded version 1; Bob saves first.
    await issues.update_issue(
        session, bob, issue_id, IssueChanges(title="Bob's title"), expected_version=1
    )
    with pytest.raises(StaleEdit) as refusal:
        await issues.update_issue(
            session, ann, issue_id, IssueChanges(title="Ann's title"), expected_version=1
        )
    assert "Bob changed title from Original to Bob's title" in refusal.value.changes
    assert refusal.value.status == 409
    current = await session.get(Issue, issue_id)
    await session.refresh(current)
    assert (current.title, current.version) == ("Bob's title", 2)


async def test_an_edit_without_a_version_applies_to_the_current_one(session: AsyncSession) -> None:
    owner = await make_user(session)
    project = await make_project(session, owner)
    issue = await make_issue(session, owner, project)
    await issues.update_issue(
        session, owner, issue.id, IssueChanges(priority="low"), expected_version=None
    )
    updated = await issues.update_issue(
        session, owner, issue.id, IssueChanges(priority="high"), expected_version=None
    )
    assert (updated.priority, updated.version) == ("high", 3)


async def test_an_edit_that_changes_nothing_writes_nothing(session: AsyncSession) -> None:
    owner = await make_user(session)
    project = await make_project(session, owner)
    issue = await make_issue(session, owner, project, title="Same")
    await issues.update_issue(
        session, owner, issue.id, IssueChanges(title="Same"), expected_version=1
    )
    assert await session.scalar(select(func.count()).select_from(Activity)) == 2


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        (IssueChanges(title=""), "title"),
        (IssueChanges(priority="critical"), "priority"),
        (IssueChanges(type="epic"), "type"),
        (IssueChanges(status_id=99999), "status"),
        (IssueChanges(assignee_id=99999), "assignee"),
        (IssueChanges(label_ids=[99999]), "labels"),
    ],
)
async def test_a_bad_edit_is_refused_and_changes_nothing(
    session: AsyncSession, changes: IssueChanges, field: str
) -> None:
    owner = await make_user(session)
    project = await make_project(session, owner)
    issue_id = (await make_issue(session, owner, project, title="Keep")).id
    with pytest.raises(Invalid) as refusal:
        await issues.update_issue(session, owner, issue_id, changes, expected_version=1)
    assert refusal.value.field == field
    issue = await session.get(Issue, issue_id)
    await session.refresh(issue)
    assert (issue.title, issue.version) == ("Keep", 1)


# --- Bulk edits -------------------------------------------------------------------------------


async def test_bulk_edit_writes_one_activity_row_per_issue_and_is_all_or_nothing(
    session: AsyncSession,
) -> None:
    owner = await make_user(session)
    project = await make_project(session, owner)
    other = await make_project(session, owner)
    ids = [(await make_issue(session, owner, project)).id for _ in range(3)]
    foreign = (await make_issue(session, owner, other)).id
    project_id = project.id
    with pytest.raises(Invalid):
        await issues.bulk_update(
            session, owner, project_id, [*ids, foreign], IssueChanges(priority="high")
        )
    assert await session.scalar(select(func.count()).where(Issue.priority == "high")) == 0
    changed = await issues.bulk_update(
        session, owner, project_id, ids, IssueChanges(priority="high")
    )
    assert changed == 3
    rows = list(
        await session.scalars(select(Activity.issue_id).where(Activity.kind == "issue.updated"))
    )
    assert sorted(rows) == sorted(ids)
