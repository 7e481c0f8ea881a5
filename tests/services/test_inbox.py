"""The inbox: recorded for everyone who should hear (mail or not), grouped by issue, read and
done by its owner only, and access checked again when it is read."""

from __future__ import annotations

from datetime import timedelta

import pytest
from quart import Quart
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.errors import NotFound
from app.models import Membership, Notification, User
from app.services import comments, inbox, issues
from app.services.inbox import Tab
from app.services.issues import IssueChanges
from app.services.notifications import mail_due_digests
from tests.factories import add_member, make_issue, make_project, make_user
from tests.mailcatcher import MailCatcher
from tests.services.rows import statuses


async def mail_off(session: AsyncSession, user: User) -> None:
    await session.execute(update(User).where(User.id == user.id).values(notify_by_email=False))
    await session.commit()


async def team(session: AsyncSession, *, public: bool = False):
    ann, bob = await make_user(session), await make_user(session)
    project = await make_project(session, ann, is_public=public)
    await add_member(session, project, bob)
    return ann, bob, project


async def test_someone_with_mail_off_gets_inbox_rows_and_no_mail(
    app: Quart, mailbox: MailCatcher
) -> None:
    async with app.extensions["database"].sessionmaker() as session:
        ann, bob, project = await team(session)
        await mail_off(session, bob)
        issue = await issues.create_issue(session, ann, project.id, title="t", assignee_id=bob.id)
        await comments.add_comment(session, ann, issue.id, "and a comment")
        page = await inbox.inbox_page(session, bob)
        assert [(e.issue_key, e.unread) for e in page.entries] == [(issue.key, True)]
        assert await inbox.unread_count(session, bob.id) == 1
        await session.execute(update(Notification).values(created_at=utcnow() - timedelta(hours=1)))
        await session.commit()
        assert await mail_due_digests(session, base_url="http://issues.test") == 0
        # Handled for mail, so the digest does not read them again; still in the inbox.
        pending = await session.scalar(
            select(func.count()).where(Notification.emailed_at.is_(None))
        )
        assert pending == 0
        assert await inbox.unread_count(session, bob.id) == 1
    await app.extensions["mail_sender"].deliver_pending()
    assert mailbox.messages == []


async def test_entries_are_grouped_by_issue_newest_first_with_reasons(
    session: AsyncSession,
) -> None:
    ann, bob, project = await team(session)
    first = await issues.create_issue(session, ann, project.id, title="First", assignee_id=bob.id)
    second = await issues.create_issue(session, ann, project.id, title="Second", assignee_id=bob.id)
    await comments.add_comment(session, ann, first.id, f"look @{bob.handle}")
    done = (await statuses(session, project.id))["Done"]
    await issues.update_issue(
        session, ann, second.id, IssueChanges(status_id=done), expected_version=None
    )
    page = await inbox.inbox_page(session, bob, Tab.ALL)
    assert [e.title for e in page.entries] == ["Second", "First"]
    second_entry, first_entry = page.entries
    assert first_entry.reasons == ["assigned to you", "you were mentioned"]
    assert second_entry.reasons == ["assigned to you", "status changed"]
    assert "changed status" in second_entry.latest_change
    assert first_entry.latest_change.endswith("commented")
    assert first_entry.project_name == project.name


async def test_pages_follow_on_by_cursor(session: AsyncSession) -> None:
    ann, bob, project = await team(session)
    made = [
        await issues.create_issue(session, ann, project.id, title=f"I{n}", assignee_id=bob.id)
        for n in range(5)
    ]
    seen, before = [], None
    while True:
        page = await inbox.inbox_page(session, bob, Tab.ALL, before=before, page_size=2)
        seen += [e.issue_id for e in page.entries]
        if page.next_cursor is None:
            break
        before = page.next_cursor
    assert seen == [issue.id for issue in reversed(made)]


async def test_mark_read_all_read_and_done(session: AsyncSession) -> None:
    ann, bob, project = await team(session)
    one = await issues.create_issue(session, ann, project.id, title="One", assignee_id=bob.id)
    two = await issues.create_issue(session, ann, project.id, title="Two", assignee_id=bob.id)
    three = await issues.create_issue(session, ann, project.id, title="Three", assignee_id=bob.id)
    assert await inbox.unread_count(session, bob.id) == 3

    await inbox.mark_read(session, bob, one.id)
    assert await inbox.unread_count(session, bob.id) == 2
    unread = await inbox.inbox_page(session, bob, Tab.UNREAD)
    assert {e.issue_id for e in unread.entries} == {two.id, three.id}
    every = await inbox.inbox_page(session, bob, Tab.ALL)
    assert {e.issue_id: e.unread for e in every.entries} == {
        one.id: False,
        two.id: True,
        three.id: True,
    }

    await inbox.mark_done(session, bob, two.id)
    assert await inbox.unread_count(session, bob.id) == 1
    assert two.id not in {
        e.issue_id for e in (await inbox.inbox_page(session, bob, Tab.ALL)).entries
    }
    assert [e.issue_id for e in (await inbox.inbox_page(session, bob, Tab.DONE)).entries] == [
        two.id
    ]

    await inbox.mark_all_read(session, bob)
    assert await inbox.unread_count(session, bob.id) == 0
    assert (await inbox.inbox_page(session, bob, Tab.UNREAD)).entries == []
    # A new change brings a done issue back to the inbox, unread.
    await comments.add_comment(session, ann, two.id, "again")
    assert await inbox.unread_count(session, bob.id) == 1


async def test_the_count_counts_issues_and_stops_past_the_cap(session: AsyncSession) -> None:
    ann, bob, project = await team(session)
    issue = await issues.create_issue(session, ann, project.id, title="t", assignee_id=bob.id)
    for n in range(3):
        await comments.add_comment(session, ann, issue.id, f"comment {n}")
    assert await inbox.unread_count(session, bob.id) == 1  # one issue, four rows
    activity_id = await session.scalar(select(Notification.activity_id).limit(1))
    more = [(await make_issue(session, ann, project)).id for _ in range(inbox.COUNT_CAP + 2)]
    session.add_all(
        Notification(user_id=bob.id, issue_id=issue_id, activity_id=activity_id, reason="assigned")
        for issue_id in more
    )
    await session.commit()
    assert await inbox.unread_count(session, bob.id) == inbox.COUNT_CAP + 1
    assert inbox.count_label(inbox.COUNT_CAP + 1) == "99+"


async def test_someone_elses_entry_is_refused_and_nothing_is_written(session: AsyncSession) -> None:
    ann, bob, project = await team(session)
    cat = await make_user(session)
    await add_member(session, project, cat)
    issue = await issues.create_issue(session, ann, project.id, title="t", assignee_id=bob.id)
    issue_id = issue.id  # a refusal's rollback expires the session's objects
    for write in (inbox.mark_read, inbox.mark_done):
        with pytest.raises(NotFound):
            await write(session, cat, issue_id)
    await inbox.mark_all_read(session, cat)
    assert await inbox.unread_count(session, bob.id) == 1
    assert await session.scalar(select(func.count()).where(Notification.read_at.is_not(None))) == 0


async def test_removed_from_a_private_project_its_entries_and_titles_are_gone(
    session: AsyncSession,
) -> None:
    ann, bob, project = await team(session)
    issue = await issues.create_issue(
        session, ann, project.id, title="Secret plan", assignee_id=bob.id
    )
    assert await inbox.unread_count(session, bob.id) == 1
    await session.execute(Membership.__table__.delete().where(Membership.user_id == bob.id))
    await session.commit()
    assert await inbox.unread_count(session, bob.id) == 0
    for tab in Tab:
        assert (await inbox.inbox_page(session, bob, tab)).entries == []
    issue_id = issue.id  # a refusal's rollback expires the session's objects
    with pytest.raises(NotFound):
        await inbox.mark_read(session, bob, issue_id)
    with pytest.raises(NotFound):
        await inbox.entry_issue(session, bob, issue_id)


async def test_watchers_with_mail_off_hear_of_comments_in_the_inbox(session: AsyncSession) -> None:
    ann, bob, project = await team(session, public=True)
    issue = await make_issue(session, ann, project)
    await mail_off(session, ann)
    await comments.add_comment(session, bob, issue.id, "a question")
    page = await inbox.inbox_page(session, ann)
    assert [(e.issue_id, e.reasons) for e in page.entries] == [(issue.id, ["new comment"])]
