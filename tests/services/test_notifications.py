"""Watchers: who watches and is told of a change, one email per burst, no leak from private ones."""

from __future__ import annotations

from datetime import timedelta

from quart import Quart
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.models import Membership, Notification, User, Watcher
from app.services import comments, issue_views, issues, projects
from app.services.issues import IssueChanges
from app.services.notifications import mail_due_digests
from tests.factories import add_member, make_issue, make_project, make_user
from tests.mailcatcher import MailCatcher
from tests.services.rows import statuses

QUIET = timedelta(minutes=2)


async def run_digests(app: Quart) -> int:
    async with app.extensions["database"].sessionmaker() as session:
        return await mail_due_digests(session, base_url="http://issues.test", quiet=QUIET)


async def age_notifications(app: Quart, by: timedelta) -> None:
    async with app.extensions["database"].sessionmaker() as session:
        await session.execute(update(Notification).values(created_at=utcnow() - by))
        await session.commit()


# --- Who watches, who is told -----------------------------------------------------------------


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


# --- The digest mail --------------------------------------------------------------------------


async def test_a_burst_of_changes_makes_one_email_after_it_goes_quiet(
    app: Quart, mailbox: MailCatcher
) -> None:
    async with app.extensions["database"].sessionmaker() as session:
        ann = await make_user(session, email="ann@example.com", display_name="Ann")
        bob = await make_user(session, email="bob@example.com", display_name="Bob")
        project = await make_project(session, ann, key="WEB")
        await add_member(session, project, bob)
        issue = await make_issue(session, ann, project, title="Checkout fails")
        workflow = await projects.workflow(session, project.id)
        await issues.update_issue(
            session, ann, issue.id, IssueChanges(assignee_id=bob.id), expected_version=None
        )
        for status in workflow[1:4]:
            await issues.update_issue(
                session, ann, issue.id, IssueChanges(status_id=status.id), expected_version=None
            )
        await comments.add_comment(session, ann, issue.id, "Please look at this today.")

    assert await run_digests(app) == 0  # the burst has not gone quiet yet
    await age_notifications(app, QUIET + timedelta(seconds=1))
    assert await run_digests(app) == 1
    assert await run_digests(app) == 0  # mailed once
    await app.extensions["mail_sender"].deliver_pending()
    [mail] = mailbox.messages
    assert mail.recipients == ["bob@example.com"]
    assert mail.subject == "Updates on issues you watch"
    assert "WEB-1 Checkout fails" in mail.text
    assert "assigned to you" in mail.text
    assert "Ann changed status from To do to In progress" in mail.text
    assert "Ann commented" in mail.text


async def test_a_long_burst_is_mailed_after_the_longest_wait(
    app: Quart, mailbox: MailCatcher
) -> None:
    async with app.extensions["database"].sessionmaker() as session:
        ann = await make_user(session)
        bob = await make_user(session)
        project = await make_project(session, ann)
        await add_member(session, project, bob)
        issue = await issues.create_issue(session, ann, project.id, title="t", assignee_id=bob.id)
        await age_notifications(app, timedelta(minutes=16))
        await comments.add_comment(session, ann, issue.id, "still going")  # the burst goes on
    assert await run_digests(app) == 1


async def test_no_mail_for_people_who_turned_it_off(app: Quart, mailbox: MailCatcher) -> None:
    async with app.extensions["database"].sessionmaker() as session:
        ann = await make_user(session)
        bob = await make_user(session)
        project = await make_project(session, ann)
        await add_member(session, project, bob)
        await session.execute(update(User).where(User.id == bob.id).values(notify_by_email=False))
        await session.commit()
        await issues.create_issue(session, ann, project.id, title="t", assignee_id=bob.id)
    await age_notifications(app, QUIET * 2)
    assert await run_digests(app) == 0


async def test_someone_removed_from_a_private_project_hears_nothing_more(
    app: Quart, mailbox: MailCatcher
) -> None:
    async with app.extensions["database"].sessionmaker() as session:
        ann = await make_user(session)
        bob = await make_user(session)
        project = await make_project(session, ann)
        await add_member(session, project, bob)
        issue = await issues.create_issue(
            session, ann, project.id, title="Secret plan", assignee_id=bob.id
        )
        # Removed after the change was recorded, before the digest is written.
        await session.execute(Membership.__table__.delete().where(Membership.user_id == bob.id))
        await session.commit()
        await comments.add_comment(session, ann, issue.id, "more secrets")
    await age_notifications(app, QUIET * 2)
    assert await run_digests(app) == 0
    await app.extensions["mail_sender"].deliver_pending()
    assert all("Secret plan" not in mail.text for mail in mailbox.messages)
