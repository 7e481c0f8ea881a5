"""Sub-issues and relations: one parent in the same project and never a cycle, relations stored
once and shown from both ends, refused twice, and invisible where the other issue is."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from app.errors import Invalid
from app.models import Activity, Issue, IssueRelation, RelationType
from app.services import issues, relation_views, relations, search
from app.services.issues import IssueChanges
from tests.factories import add_member, make_issue, make_project, make_user
from tests.services.rows import statuses


async def _count(session: AsyncSession, model: type) -> int:
    return await session.scalar(select(func.count()).select_from(model))


async def _kinds(session: AsyncSession, issue: Issue) -> list[str]:
    return list(
        await session.scalars(
            select(Activity.kind).where(Activity.issue_id == issue.id).order_by(Activity.seq)
        )
    )


async def _reparent(session: AsyncSession, actor, issue_id: int, parent: str) -> Issue:
    return await issues.update_issue(
        session, actor, issue_id, IssueChanges(parent=parent), expected_version=None
    )


async def test_a_sub_issue_is_made_in_one_step_and_its_parent_shows_the_progress(
    session: AsyncSession,
) -> None:
    alice = await make_user(session)
    web = await make_project(session, alice, key="WEB")
    parent = await make_issue(session, alice, web, title="Launch")
    first = await issues.create_issue(session, alice, web.id, title="Copy", parent="WEB-1")
    await issues.create_issue(session, alice, web.id, title="Pictures", parent="web-1")
    done_id = (await statuses(session, web.id))["Done"]
    await issues.update_issue(
        session, alice, first.id, IssueChanges(status_id=done_id), expected_version=None
    )

    shown = await relation_views.issue_relations(session, alice, parent.id, None)
    assert [link.key for link in shown.sub_issues] == ["WEB-2", "WEB-3"]
    assert shown.progress == "1 of 2 done"
    assert (await relation_views.card_marks(session, [parent.id]))[parent.id].done == 1
    # The parent's own log says so, so its kept page and its card change at once.
    assert await _kinds(session, parent) == [
        "issue.created",
        "subissue.added",
        "subissue.added",
        "subissue.changed",
    ]
    child = await relation_views.issue_relations(session, alice, first.id, parent.id)
    assert child.parent is not None and child.parent.key == "WEB-1"


async def test_a_parent_cycle_itself_and_another_project_are_refused_and_nothing_changes(
    session: AsyncSession,
) -> None:
    alice = await make_user(session)
    web = await make_project(session, alice, key="WEB")
    api = await make_project(session, alice, key="API")
    top = (await make_issue(session, alice, web)).id
    middle = (await issues.create_issue(session, alice, web.id, title="m", parent="WEB-1")).id
    bottom = (await issues.create_issue(session, alice, web.id, title="b", parent="WEB-2")).id
    await make_issue(session, alice, api)
    events = await _count(session, Activity)
    for issue, parent, message in [
        (top, "WEB-3", "cycle"),
        (top, "WEB-2", "cycle"),
        (middle, "WEB-2", "its own parent"),
        (bottom, "API-1", "same project"),
        (bottom, "WEB-99", "no issue"),
    ]:
        with pytest.raises(Invalid) as refused:
            await _reparent(session, alice, issue, parent)
        assert refused.value.field == "parent"
        assert message in refused.value.message.lower()
    assert await _count(session, Activity) == events
    parents = await session.scalars(select(Issue.parent_id).order_by(Issue.id))
    assert list(parents) == [None, top, middle, None]
    # Moving a sub-issue elsewhere in its tree is fine, and so is clearing the parent.
    await _reparent(session, alice, bottom, "WEB-1")
    await _reparent(session, alice, middle, "")
    moved = await session.scalar(
        select(Issue.parent_id).where(Issue.id == middle).execution_options(populate_existing=True)
    )
    assert moved is None
    top_issue = await session.get(Issue, top)
    assert (await _kinds(session, top_issue))[-2:] == ["subissue.added", "subissue.removed"]


async def test_a_relation_is_stored_once_and_seen_from_both_ends(session: AsyncSession) -> None:
    alice = await make_user(session)
    web = await make_project(session, alice, key="WEB")
    api = await make_project(session, alice, key="API", is_public=True)
    one = await make_issue(session, alice, web, title="Login")
    other = await make_issue(session, alice, api, title="Token endpoint")
    await relations.add_relation(session, alice, other.id, "blocks", "WEB-1")
    assert await _count(session, IssueRelation) == 1
    mine = await relation_views.issue_relations(session, alice, one.id, None)
    theirs = await relation_views.issue_relations(session, alice, other.id, None)
    assert [(r.type, r.issue.key) for r in mine.relations] == [(RelationType.BLOCKED_BY, "API-1")]
    assert [(r.type, r.issue.key) for r in theirs.relations] == [(RelationType.BLOCKS, "WEB-1")]
    assert mine.blocked and not theirs.blocked
    assert (await relation_views.card_marks(session, [one.id]))[one.id].blocked
    # Both logs have it; the other project's key is not in this one's payload.
    assert (await _kinds(session, one))[-1] == "relation.added"
    added = await session.scalar(
        select(Activity).where(Activity.issue_id == one.id, Activity.kind == "relation.added")
    )
    assert added.payload == {"relation": "blocked_by", "other_issue_id": other.id}
    # Closing the blocker lifts the mark, and the blocked issue hears of it.
    done_id = (await statuses(session, api.id))["Done"]
    await issues.update_issue(
        session, alice, other.id, IssueChanges(status_id=done_id), expected_version=None
    )
    assert one.id not in await relation_views.card_marks(session, [one.id])
    assert (await _kinds(session, one))[-1] == "relation.blocker_changed"
    assert not (await relation_views.issue_relations(session, alice, one.id, None)).blocked


@pytest.mark.parametrize(
    ("first", "second", "message"),
    [
        ("blocks", "blocks", "already blocks"),
        ("blocks", "blocked_by", "already blocks"),
        ("duplicates", "duplicated_by", "already duplicates"),
        ("relates_to", "relates_to", "already relates to"),
    ],
)
async def test_the_same_relation_twice_either_way_round_is_refused(
    session: AsyncSession, first: str, second: str, message: str
) -> None:
    alice = await make_user(session)
    web = await make_project(session, alice, key="WEB")
    one, two = await make_issue(session, alice, web), await make_issue(session, alice, web)
    await relations.add_relation(session, alice, one.id, first, "WEB-2")
    events = await _count(session, Activity)
    with pytest.raises(Invalid) as refused:
        await relations.add_relation(
            session,
            alice,
            one.id if second == first else two.id,
            second,
            "WEB-2" if second == first else "WEB-1",
        )
    assert message in refused.value.message
    assert await _count(session, IssueRelation) == 1
    assert await _count(session, Activity) == events


async def test_an_issue_cannot_relate_to_itself_nor_to_an_issue_one_cannot_read(
    session: AsyncSession,
) -> None:
    alice, bob = await make_user(session), await make_user(session)
    web = await make_project(session, alice, key="WEB")
    await make_project(session, bob, key="SEC")
    await make_issue(session, bob, await _project(session, bob, "SEC"))
    issue_id = (await make_issue(session, alice, web)).id
    for key, message in [("WEB-1", "itself"), ("SEC-1", "no issue"), ("nonsense", "no issue")]:
        with pytest.raises(Invalid) as refused:
            await relations.add_relation(session, alice, issue_id, "relates_to", key)
        assert message in refused.value.message.lower()
    with pytest.raises(Invalid):
        await relations.add_relation(session, alice, issue_id, "parent_of", "WEB-1")
    assert await _count(session, IssueRelation) == 0


async def _project(session: AsyncSession, owner, key: str):
    from app.services import projects

    return await projects.project_by_key(session, owner, key)


async def test_a_relation_to_a_private_issue_is_not_shown_to_who_cannot_read_it(
    session: AsyncSession,
) -> None:
    alice, carol = await make_user(session), await make_user(session)
    web = await make_project(session, alice, key="WEB", is_public=True)
    sec = await make_project(session, alice, key="SEC")
    await add_member(session, web, carol)
    issue = await make_issue(session, alice, web, title="Public")
    await make_issue(session, alice, sec, title="Secret plan")
    await relations.add_relation(session, alice, issue.id, "blocked_by", "SEC-1")
    assert [
        r.issue.title
        for r in (await relation_views.issue_relations(session, alice, issue.id, None)).relations
    ] == ["Secret plan"]
    shown = await relation_views.issue_relations(session, carol, issue.id, None)
    assert shown.relations == [] and not shown.blocked
    # The shared board card counts only blockers every reader of the board may read.
    assert issue.id not in await relation_views.card_marks(session, [issue.id])


async def test_marking_a_duplicate_can_close_it_in_the_same_commit(session: AsyncSession) -> None:
    alice = await make_user(session)
    web = await make_project(session, alice, key="WEB")
    dup = await make_issue(session, alice, web)
    await make_issue(session, alice, web)
    await relations.add_relation(
        session, alice, dup.id, "duplicates", "WEB-2", close_duplicate=True
    )
    status = await session.scalar(
        select(Issue).where(Issue.id == dup.id).execution_options(populate_existing=True)
    )
    assert status.status_id == (await statuses(session, web.id))["Done"]
    assert (await _kinds(session, dup))[-2:] == ["relation.added", "issue.updated"]


async def test_removing_a_relation_records_it_on_both(session: AsyncSession) -> None:
    alice = await make_user(session)
    web = await make_project(session, alice, key="WEB")
    one, two = await make_issue(session, alice, web), await make_issue(session, alice, web)
    relation = await relations.add_relation(session, alice, one.id, "relates_to", "WEB-2")
    await relations.remove_relation(session, alice, two.id, relation.id)
    assert await _count(session, IssueRelation) == 0
    assert (await _kinds(session, one))[-1] == "relation.removed"
    assert (await _kinds(session, two))[-1] == "relation.removed"


async def test_the_search_finds_by_parent_sub_issues_blockers_and_duplicates(
    session: AsyncSession,
) -> None:
    alice, carol = await make_user(session), await make_user(session)
    web = await make_project(session, alice, key="WEB", is_public=True)
    sec = await make_project(session, alice, key="SEC")
    parent = await make_issue(session, alice, web, title="Parent")
    await issues.create_issue(session, alice, web.id, title="Child", parent="WEB-1")
    blocked = await make_issue(session, alice, web, title="Blocked")  # WEB-3
    dup = await make_issue(session, alice, web, title="Dup")  # WEB-4
    await make_issue(session, alice, sec, title="Secret")  # SEC-1
    await relations.add_relation(session, alice, blocked.id, "blocked_by", "WEB-1")
    await relations.add_relation(session, alice, dup.id, "duplicates", "SEC-1")
    await relations.add_relation(session, alice, parent.id, "blocked_by", "SEC-1")

    async def keys(viewer, query: str) -> list[str]:
        page = await search.search_issues(session, viewer, query + " sort:number-asc")
        return [issue.key for issue in page.issues]

    assert await keys(alice, "parent:web-1") == ["WEB-2"]
    assert await keys(alice, "has:sub-issues") == ["WEB-1"]
    assert await keys(alice, "-has:sub-issues project:WEB") == ["WEB-2", "WEB-3", "WEB-4"]
    assert await keys(alice, "is:blocked") == ["WEB-1", "WEB-3"]
    assert await keys(alice, "blocks:WEB-3") == ["WEB-1"]
    assert await keys(alice, "blocks:WEB-1") == ["SEC-1"]
    assert await keys(alice, "is:duplicate") == ["WEB-4"]
    # Carol cannot read SEC: its issue blocks nothing and is duplicated by nothing for her.
    assert await keys(carol, "is:blocked") == ["WEB-3"]
    assert await keys(carol, "is:duplicate") == []
    assert await keys(carol, "blocks:WEB-1") == []
    assert await keys(carol, "parent:SEC-1") == []


async def test_two_re_parentings_that_together_make_a_cycle_never_both_pass(app) -> None:
    """A under B and B under A at the same moment, in two sessions: one is refused (on
    PostgreSQL, thanks to the per-project lock; SQLite's writers queue anyway)."""
    sessionmaker = app.extensions["database"].sessionmaker
    async with sessionmaker() as session:
        alice = await make_user(session)
        web = await make_project(session, alice, key="WEB")
        pairs = [
            ((await make_issue(session, alice, web)).id, (await make_issue(session, alice, web)).id)
            for _ in range(8)
        ]
        keys = {
            issue.id: issue.key
            for issue in await session.scalars(select(Issue).options(joinedload(Issue.project)))
        }

    async def move(issue_id: int, parent_id: int) -> None:
        async with sessionmaker() as session:
            await _reparent(session, alice, issue_id, keys[parent_id])

    for first, second in pairs:
        outcomes = await asyncio.gather(
            move(first, second), move(second, first), return_exceptions=True
        )
        assert sorted(type(outcome).__name__ for outcome in outcomes) == ["Invalid", "NoneType"]
    async with sessionmaker() as session:
        parents = dict((await session.execute(select(Issue.id, Issue.parent_id))).all())
    for first, second in pairs:
        assert None in (parents[first], parents[second])


async def test_a_key_that_names_no_issue_finds_nothing(session: AsyncSession) -> None:
    alice = await make_user(session)
    web = await make_project(session, alice, key="WEB")
    await make_issue(session, alice, web)
    for query in ("parent:nonsense", "blocks:WEB", "-parent:WEB-99"):
        page = await search.search_issues(session, alice, query)
        assert [issue.key for issue in page.issues] == ([] if query[0] != "-" else ["WEB-1"])
