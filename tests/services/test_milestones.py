"""Milestones: written by a project's writers only, an issue planned into one with its activity
row, progress by issues and points, a burn-up chart from the log, closing that asks where the open
issues go."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Forbidden, Invalid, NotFound
from app.models import Activity, Issue, Milestone, Role
from app.services import boards, issues, milestones, search
from app.services.boards import BoardFilters
from app.services.issues import IssueChanges
from app.services.milestone_progress import BurnUpDay, milestone_page
from tests.factories import add_member, make_issue, make_project, make_user
from tests.services.rows import count, statuses

TODAY = date(2026, 12, 3)


async def _done_status(session: AsyncSession, project_id: int) -> int:
    return (await statuses(session, project_id))["Done"]


async def test_writers_create_milestones_with_unique_titles_and_others_cannot(
    session: AsyncSession,
) -> None:
    owner, viewer, outsider = [await make_user(session) for _ in range(3)]
    project = await make_project(session, owner, key="WEB")
    pid = project.id  # a refusal's rollback expires the project
    await add_member(session, project, viewer, Role.VIEWER)
    made = await milestones.create_milestone(
        session, owner, pid, title="1.0", description="**First**", due_date=TODAY
    )
    assert made.is_open and made.due_date == TODAY
    made_id = made.id
    with pytest.raises(Invalid) as taken:
        await milestones.create_milestone(session, owner, pid, title=" 1.0 ")
    assert taken.value.field == "title"
    with pytest.raises(Forbidden):
        await milestones.create_milestone(session, viewer, pid, title="2.0")
    with pytest.raises(NotFound):  # a private project is not there for an outsider
        await milestones.create_milestone(session, outsider, pid, title="2.0")
    with pytest.raises(NotFound):
        await milestones.summaries(session, outsider, pid)
    for read in (milestones.get_milestone, milestone_page, milestones.summary):
        with pytest.raises(NotFound):
            await read(session, outsider, pid, made_id)
    assert await count(session, Milestone) == 1
    [event] = [
        row
        for row in await session.scalars(select(Activity).where(Activity.issue_id.is_(None)))
        if row.kind.startswith("milestone.")
    ]
    assert event.kind == "milestone.created" and event.payload == {"id": made_id, "title": "1.0"}


async def test_an_issue_gets_one_milestone_of_its_project_with_an_activity_row(
    session: AsyncSession,
) -> None:
    owner = await make_user(session)
    project = await make_project(session, owner, key="WEB")
    pid = project.id  # a refusal's rollback expires the project
    other = await make_project(session, owner, key="API")
    first = await milestones.create_milestone(session, owner, pid, title="1.0")
    second = await milestones.create_milestone(session, owner, pid, title="2.0")
    elsewhere = await milestones.create_milestone(session, owner, other.id, title="1.0")
    issue = await make_issue(session, owner, project)
    issue_id, second_id = issue.id, second.id

    await issues.update_issue(
        session, owner, issue.id, IssueChanges(milestone_id=first.id), expected_version=None
    )
    await issues.update_issue(
        session, owner, issue.id, IssueChanges(milestone_id=second.id), expected_version=None
    )
    row = await session.scalar(
        select(Activity).where(Activity.issue_id == issue.id).order_by(Activity.seq.desc())
    )
    assert row.payload["changes"] == {"milestone": ["1.0", "2.0"]}
    assert row.payload["milestone"] == [first.id, second.id]
    for wrong in (elsewhere.id, 999_999):
        with pytest.raises(Invalid) as refused:
            await issues.update_issue(
                session, owner, issue_id, IssueChanges(milestone_id=wrong), expected_version=None
            )
        assert refused.value.field == "milestone"
    assert (await session.get(Issue, issue_id, populate_existing=True)).milestone_id == second_id


async def test_an_estimate_is_a_small_whole_number(session: AsyncSession) -> None:
    owner = await make_user(session)
    project = await make_project(session, owner, key="WEB")
    issue_id = (await make_issue(session, owner, project)).id
    with pytest.raises(Invalid) as refused:
        await issues.update_issue(
            session, owner, issue_id, IssueChanges(estimate=1001), expected_version=None
        )
    assert refused.value.field == "estimate"
    await issues.update_issue(
        session, owner, issue_id, IssueChanges(estimate=5), expected_version=None
    )
    assert (await session.get(Issue, issue_id, populate_existing=True)).estimate == 5


async def test_the_listing_puts_open_ones_first_by_due_date_and_says_which_are_overdue(
    session: AsyncSession,
) -> None:
    owner = await make_user(session)
    project = await make_project(session, owner, key="WEB")
    pid = project.id  # a refusal's rollback expires the project
    later = await milestones.create_milestone(
        session, owner, pid, title="Later", due_date=TODAY + timedelta(days=30)
    )
    undated = await milestones.create_milestone(session, owner, pid, title="Someday")
    late = await milestones.create_milestone(
        session, owner, pid, title="Late", due_date=TODAY - timedelta(days=1)
    )
    closed = await milestones.create_milestone(
        session, owner, pid, title="Shipped", due_date=TODAY - timedelta(days=90)
    )
    await milestones.close_milestone(session, owner, pid, closed.id)
    listed = await milestones.summaries(session, owner, pid, today=TODAY)
    assert [s.milestone.id for s in listed] == [late.id, later.id, undated.id, closed.id]
    assert [s.overdue for s in listed] == [True, False, False, False]


async def test_progress_counts_issues_and_points_done(session: AsyncSession) -> None:
    owner = await make_user(session)
    project = await make_project(session, owner, key="WEB")
    pid = project.id  # a refusal's rollback expires the project
    release = await milestones.create_milestone(session, owner, pid, title="1.0")
    done = await _done_status(session, pid)
    for points, finished in ((3, True), (5, False), (None, False)):
        issue = await issues.create_issue(
            session,
            owner,
            pid,
            title="Work",
            milestone_id=release.id,
            estimate=points,
            status_id=done if finished else None,
        )
    await make_issue(session, owner, project)  # in no milestone
    page = await milestone_page(session, owner, pid, release.id, today=TODAY)
    found = page.summary
    assert (found.total, found.done, found.points, found.points_done) == (3, 1, 8, 3)
    by_category = {group.category.value: group.count for group in page.groups}
    assert by_category == {"todo": 2, "in_progress": 0, "done": 1}
    assert issue.milestone_id == release.id


async def _on_day(session: AsyncSession, issue_id: int, day: date) -> None:
    """Date the issue's events so far to `day` (the chart buckets by day)."""
    at = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=12)
    await session.execute(
        update(Activity)
        .where(Activity.issue_id == issue_id, Activity.created_at > at)
        .values(created_at=at)
    )
    await session.commit()


async def test_the_burn_up_chart_follows_the_log_day_by_day(session: AsyncSession) -> None:
    owner = await make_user(session)
    project = await make_project(session, owner, key="WEB")
    pid = project.id  # a refusal's rollback expires the project
    release = await milestones.create_milestone(session, owner, pid, title="1.0")
    start = TODAY - timedelta(days=3)
    await session.execute(
        update(Milestone)
        .where(Milestone.id == release.id)
        .values(created_at=datetime.combine(start, datetime.min.time(), UTC))
    )
    await session.commit()
    done = await _done_status(session, pid)
    # Day 0: two issues planned in. Day 1: one done, a third planned in (created elsewhere
    # first). Day 2: the done one reopened and done again, a fourth in and out. Day 3: nothing.
    a = await issues.create_issue(session, owner, pid, title="A", milestone_id=release.id)
    b = await issues.create_issue(session, owner, pid, title="B", milestone_id=release.id)
    await _on_day(session, a.id, start)
    await _on_day(session, b.id, start)
    c = await make_issue(session, owner, project)
    await _on_day(session, c.id, start)
    await issues.update_issue(
        session, owner, a.id, IssueChanges(status_id=done), expected_version=None
    )
    await issues.update_issue(
        session, owner, c.id, IssueChanges(milestone_id=release.id), expected_version=None
    )
    await _on_day(session, a.id, start + timedelta(days=1))
    await _on_day(session, c.id, start + timedelta(days=1))
    todo = (await statuses(session, pid))["To do"]
    await issues.update_issue(
        session, owner, a.id, IssueChanges(status_id=todo), expected_version=None
    )
    moved = await session.get(Issue, a.id, populate_existing=True)
    await issues.move_issue(
        session, owner, a.id, status_id=done, before_id=None, expected_version=moved.version
    )
    await _on_day(session, a.id, start + timedelta(days=2))

    page = await milestone_page(session, owner, pid, release.id, today=TODAY)
    assert page.burn_up == [
        BurnUpDay(start, 2, 0),
        BurnUpDay(start + timedelta(days=1), 3, 1),
        BurnUpDay(start + timedelta(days=2), 3, 1),
        BurnUpDay(TODAY, 3, 1),
    ]
    assert b.milestone_id == release.id


async def test_closing_with_open_issues_asks_where_they_go_and_moves_them_in_one_commit(
    session: AsyncSession,
) -> None:
    owner = await make_user(session)
    project = await make_project(session, owner, key="WEB")
    pid = project.id  # a refusal's rollback expires the project
    release = await milestones.create_milestone(session, owner, pid, title="1.0")
    following = await milestones.create_milestone(session, owner, pid, title="1.1")
    done = await _done_status(session, pid)
    shipped = await issues.create_issue(
        session, owner, pid, title="Shipped", milestone_id=release.id, status_id=done
    )
    left = [
        (await issues.create_issue(session, owner, pid, title=t, milestone_id=release.id)).id
        for t in ("Left over", "Also left")
    ]
    release_id, following_id, shipped_id = release.id, following.id, shipped.id
    events = await count(session, Activity)
    with pytest.raises(Invalid) as asked:
        await milestones.close_milestone(session, owner, pid, release_id)
    assert asked.value.field == "move_to" and "2 open issues" in asked.value.message
    assert (await session.get(Milestone, release_id, populate_existing=True)).is_open
    assert await count(session, Activity) == events

    with pytest.raises(Invalid):  # the target must be another open milestone of the project
        await milestones.close_milestone(session, owner, pid, release_id, move_to=release_id)
    moved = await milestones.close_milestone(session, owner, pid, release_id, move_to=following_id)
    assert moved == 2
    assert not (await session.get(Milestone, release_id, populate_existing=True)).is_open
    for issue in left:
        assert (await session.get(Issue, issue, populate_existing=True)).milestone_id == (
            following_id
        )
    assert (await session.get(Issue, shipped_id, populate_existing=True)).milestone_id == (
        release_id
    )
    assert await count(session, Activity) == events + 3  # two issue events and the closing
    with pytest.raises(Invalid):  # an issue cannot be planned into a closed milestone
        await issues.update_issue(
            session, owner, left[0], IssueChanges(milestone_id=release_id), expected_version=None
        )

    await milestones.close_milestone(session, owner, pid, following_id, move_to=None)
    for issue in left:
        assert (await session.get(Issue, issue, populate_existing=True)).milestone_id is None


async def test_search_finds_issues_by_milestone_and_sorts_by_its_due_date(
    session: AsyncSession,
) -> None:
    owner, outsider = await make_user(session), await make_user(session)
    project = await make_project(session, owner, key="WEB")
    pid = project.id
    soon = await milestones.create_milestone(
        session, owner, pid, title="1.0", due_date=TODAY + timedelta(days=7)
    )
    later = await milestones.create_milestone(
        session, owner, pid, title="Big Release", due_date=TODAY + timedelta(days=70)
    )
    undated = await milestones.create_milestone(session, owner, pid, title="Someday")
    for title, milestone in (
        ("late", later),
        ("none", None),
        ("soon", soon),
        ("undated", undated),
        ("soon too", soon),
    ):
        await issues.create_issue(
            session, owner, pid, title=title, milestone_id=milestone.id if milestone else None
        )

    async def found(query: str, viewer=owner) -> list[str]:
        page = await search.search_issues(session, viewer, query, limit=2)
        titles = [issue.title for issue in page.issues]
        while page.next_cursor:  # two at a time: the cursor carries the due date
            page = await search.search_issues(
                session, viewer, query, after=page.next_cursor, limit=2
            )
            titles += [issue.title for issue in page.issues]
        return titles

    assert sorted(await found('milestone:"1.0"')) == ["soon", "soon too"]
    assert await found('milestone:"big release"') == ["late"]
    assert await found("milestone:none") == ["none"]
    assert await found("no:milestone") == ["none"]
    assert sorted(await found('-milestone:"1.0"')) == ["late", "none", "undated"]
    assert await found("sort:milestone-asc") == ["soon", "soon too", "late", "none", "undated"]
    assert (await found("sort:milestone-desc"))[:2] == ["undated", "none"]
    assert await found('milestone:"1.0"', viewer=outsider) == []
    with pytest.raises(Invalid):
        await search.search_issues(session, owner, "no:label")


async def test_the_board_filters_by_milestone_or_none(session: AsyncSession) -> None:
    owner = await make_user(session)
    project = await make_project(session, owner, key="WEB")
    pid = project.id
    release = await milestones.create_milestone(session, owner, pid, title="1.0")
    await issues.create_issue(session, owner, pid, title="Planned", milestone_id=release.id)
    await issues.create_issue(session, owner, pid, title="Unplanned")

    async def titles(milestone: str) -> list[str]:
        read = await boards.board(session, owner, pid, filters=BoardFilters(milestone=milestone))
        return [card.title for column in read.columns for card in column.cards]

    assert await titles(str(release.id)) == ["Planned"]
    assert await titles("none") == ["Unplanned"]
    assert sorted(await titles("")) == ["Planned", "Unplanned"]
    with pytest.raises(Invalid):
        BoardFilters.from_args({"milestone": "1.0"})
    assert BoardFilters.from_args({"milestone": "None"}).milestone == "none"
