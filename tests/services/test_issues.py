"""The tracker's use cases: editing on versions, bulk edits, workflow, members, watchers."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Forbidden, Invalid, NotFound
from app.models import Activity, Issue, Notification, Role, Watcher
from app.services import comments, issue_views, issues, projects
from app.services.issues import IssueChanges, StaleEdit
from tests.factories import add_member, make_issue, make_project, make_user


async def statuses(session: AsyncSession, project_id: int) -> dict[str, int]:
    return {status.name: status.id for status in await projects.workflow(session, project_id)}


async def test_a_new_project_has_the_default_workflow(session: AsyncSession) -> None:
    owner = await make_user(session)
    project = await make_project(session, owner)
    columns = await projects.workflow(session, project.id)
    assert [(c.name, c.category) for c in columns] == [
        ("Backlog", "todo"),
        ("To do", "todo"),
        ("In progress", "in_progress"),
        ("In review", "in_progress"),
        ("Done", "done"),
    ]


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


async def test_a_viewer_can_read_but_not_edit(session: AsyncSession) -> None:
    owner = await make_user(session)
    viewer = await make_user(session)
    project = await make_project(session, owner)
    await add_member(session, project, viewer, Role.VIEWER)
    issue = await make_issue(session, owner, project)
    assert (await issue_views.get_issue_by_key(session, viewer, issue.key)).id == issue.id
    with pytest.raises(Forbidden):
        await issues.update_issue(
            session, viewer, issue.id, IssueChanges(title="x"), expected_version=None
        )


async def test_issue_keys_lead_to_issues_and_private_ones_do_not_exist(
    session: AsyncSession,
) -> None:
    owner = await make_user(session)
    outsider = await make_user(session)
    project = await make_project(session, owner, key="SEC")
    issue = await make_issue(session, owner, project)
    assert (await issue_views.get_issue_by_key(session, owner, "sec-1")).id == issue.id
    for key in ("SEC-1", "SEC-2", "NOPE-1", "SEC-x"):
        with pytest.raises(NotFound):
            await issue_views.get_issue_by_key(session, outsider, key)


# --- Comments ---------------------------------------------------------------------------------


async def test_only_the_author_edits_or_deletes_a_comment_and_the_timeline_keeps_it(
    session: AsyncSession,
) -> None:
    ann = await make_user(session)
    bob = await make_user(session)
    project = await make_project(session, ann)
    await add_member(session, project, bob)
    issue = await make_issue(session, ann, project)
    comment = await comments.add_comment(session, ann, issue.id, "first words")
    comment_id = comment.id
    with pytest.raises(Forbidden):
        await comments.edit_comment(session, bob, comment_id, "hijacked")
    await comments.edit_comment(session, ann, comment_id, "better words")
    await comments.delete_comment(session, ann, comment_id)
    kinds = [entry.kind for entry in await issue_views.timeline(session, issue)]
    assert kinds == ["issue.created", "comment", "comment.edited", "comment.deleted"]
    with pytest.raises(NotFound):
        await comments.edit_comment(session, ann, comment_id, "again")


# --- Workflow, labels, members ----------------------------------------------------------------


async def test_the_workflow_can_be_changed_by_admins_only(session: AsyncSession) -> None:
    owner = await make_user(session)
    member = await make_user(session)
    project = await make_project(session, owner)
    project_id = project.id
    await add_member(session, project, member)
    with pytest.raises(Forbidden):
        await projects.add_status(session, member, project_id, name="QA", category="in_progress")
    qa = await projects.add_status(session, owner, project_id, name="QA", category="in_progress")
    await projects.move_status(session, owner, project_id, qa.id, offset=-1)
    names = [status.name for status in await projects.workflow(session, project_id)]
    assert names == ["Backlog", "To do", "In progress", "In review", "QA", "Done"]
    with pytest.raises(Invalid):
        await projects.add_status(session, owner, project_id, name="qa", category="todo")


async def test_a_status_with_issues_cannot_be_removed(session: AsyncSession) -> None:
    owner = await make_user(session)
    project = await make_project(session, owner)
    project_id = project.id
    await make_issue(session, owner, project)
    backlog = (await statuses(session, project_id))["Backlog"]
    with pytest.raises(Invalid, match="Move the issues out"):
        await projects.delete_status(session, owner, project_id, backlog)
    done = (await statuses(session, project_id))["Done"]
    await projects.delete_status(session, owner, project_id, done)
    assert "Done" not in await statuses(session, project_id)


async def test_the_last_owner_cannot_leave_or_be_demoted(session: AsyncSession) -> None:
    owner = await make_user(session)
    admin = await make_user(session)
    project = await make_project(session, owner)
    project_id = project.id
    await projects.add_member(session, owner, project_id, email=admin.email, role="admin")
    with pytest.raises(Invalid, match="last owner"):
        await projects.remove_member(session, owner, project_id, owner.id)
    with pytest.raises(Invalid, match="needs an owner"):
        await projects.change_role(session, owner, project_id, owner.id, "member")
    with pytest.raises(Forbidden):
        await projects.change_role(session, admin, project_id, admin.id, "owner")
    await projects.change_role(session, owner, project_id, admin.id, "owner")
    await projects.remove_member(session, owner, project_id, owner.id)  # now they may leave
    assert [m.role for m in await projects.members(session, project_id)] == [Role.OWNER]


async def test_members_are_added_by_the_address_of_an_existing_account(
    session: AsyncSession,
) -> None:
    owner = await make_user(session)
    project = await make_project(session, owner)
    project_id = project.id
    with pytest.raises(Invalid, match="No account"):
        await projects.add_member(
            session, owner, project_id, email="ghost@example.com", role="member"
        )
    friend = await make_user(session, email="friend@example.com")
    added = await projects.add_member(
        session, owner, project_id, email=" Friend@Example.com ", role="viewer"
    )
    assert (added.user.id, added.role) == (friend.id, Role.VIEWER)


async def test_an_archived_project_is_read_only(session: AsyncSession) -> None:
    owner = await make_user(session)
    project = await make_project(session, owner)
    project_id = project.id
    await projects.set_archived(session, owner, project_id, True)
    with pytest.raises(Forbidden, match="archived"):
        await issues.create_issue(session, owner, project_id, title="Too late")
    await projects.set_archived(session, owner, project_id, False)
    assert (await issues.create_issue(session, owner, project_id, title="Back")).number == 1


async def test_private_projects_are_invisible_in_lists(session: AsyncSession) -> None:
    owner = await make_user(session)
    outsider = await make_user(session)
    await make_project(session, owner, key="PRIV")
    await make_project(session, owner, key="OPEN", is_public=True)
    assert [p.key for p in await projects.visible_projects(session, outsider)] == ["OPEN"]
    # Anonymous readers (the API's) see public projects only.
    assert [p.key for p in await projects.visible_projects(session, None)] == ["OPEN"]
    with pytest.raises(NotFound):
        await projects.project_by_key(session, None, "PRIV")
    with pytest.raises(NotFound):
        await projects.project_by_key(session, outsider, "PRIV")


# --- Watchers and notifications ---------------------------------------------------------------


async def test_reporter_assignee_commenters_and_mentioned_people_watch(
    session: AsyncSession,
) -> None:
    ann = await make_user(session)
    bob = await make_user(session)
    cat = await make_user(session)
    dan = await make_user(session)
    project = await make_project(session, ann)
    for person in (bob, cat, dan):
        await add_member(session, project, person)
    issue = await issues.create_issue(session, ann, project.id, title="t", assignee_id=bob.id)
    await comments.add_comment(session, cat, issue.id, f"ping @{dan.handle}")
    watchers = set(await session.scalars(select(Watcher.user_id).where(Watcher.watching.is_(True))))
    assert watchers == {ann.id, bob.id, cat.id, dan.id}


async def test_someone_who_unwatched_is_not_subscribed_again(session: AsyncSession) -> None:
    ann = await make_user(session)
    bob = await make_user(session)
    project = await make_project(session, ann)
    await add_member(session, project, bob)
    issue = await make_issue(session, ann, project)
    await comments.add_comment(session, bob, issue.id, "one")
    await issues.set_watching(session, bob, issue.id, False)
    await comments.add_comment(session, bob, issue.id, "two")
    assert not await issue_views.is_watching(session, issue.id, bob)


async def test_watchers_are_notified_but_not_of_their_own_changes(session: AsyncSession) -> None:
    ann = await make_user(session)
    bob = await make_user(session)
    project = await make_project(session, ann)
    await add_member(session, project, bob)
    issue = await make_issue(session, ann, project)
    await comments.add_comment(session, bob, issue.id, "bob comments")  # tells ann
    done = (await statuses(session, project.id))["Done"]
    await issues.update_issue(
        session, ann, issue.id, IssueChanges(status_id=done), expected_version=None
    )
    rows = list(await session.execute(select(Notification.user_id, Notification.reason)))
    assert sorted(rows) == sorted([(ann.id, "commented"), (bob.id, "status_changed")])
