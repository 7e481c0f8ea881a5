"""Sub-issues and relations on the pages: made from the parent's page in one step, the kept
issue page showing a sub-issue's new status at once, refusals as messages, board marks, and a
private issue's title never on a page of someone who cannot read it."""

from __future__ import annotations

from quart import Quart

from app.services import issues, projects, relation_views
from app.services.issues import IssueChanges
from tests.factories import make_issue, make_project
from tests.live.test_stream import Team, session_of, team
from tests.pages import submit, text_of


async def page(client, path: str) -> str:
    response = await client.get(path)
    assert response.status_code == 200, path
    return await text_of(response)


async def _parent(t: Team) -> None:
    async with await session_of(t.app) as session:
        project = await projects.project_by_key(session, t.owner, "LIVE")
        await make_issue(session, t.owner, project, title="Launch the site")


async def test_a_sub_issue_made_on_the_parents_page_shows_there_with_the_progress(
    app: Quart,
) -> None:
    t = await team(app)
    await _parent(t)
    before = await page(t.owner_client, "/LIVE-1")
    assert "No sub-issues." in before
    response = await submit(t.owner_client, "/LIVE-1/sub-issues", {"title": "Write the copy"})
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/LIVE-1#sub-issues")
    await submit(t.owner_client, "/LIVE-1/sub-issues", {"title": "Take pictures"})
    shown = await page(t.owner_client, "/LIVE-1")
    assert "0 of 2 done" in shown and "Write the copy" in shown and "LIVE-3" in shown
    child = await page(t.owner_client, "/LIVE-2")
    assert "Sub-issue of" in child and "Launch the site" in child

    # Someone closes a sub-issue elsewhere: the parent's kept page shows it at once.
    async with await session_of(app) as session:
        done = (await projects.workflow(session, t.project_id))[-1]
        await issues.update_issue(
            session,
            t.member,
            (await _issue_id(session, t, "LIVE-2")),
            IssueChanges(status_id=done.id),
            expected_version=None,
        )
    assert "1 of 2 done" in await page(t.owner_client, "/LIVE-1")
    # And a sub-issue's new title too, though the parent's own log did not move for it.
    async with await session_of(app) as session:
        await issues.update_issue(
            session,
            t.member,
            await _issue_id(session, t, "LIVE-3"),
            IssueChanges(title="Take better pictures"),
            expected_version=None,
        )
    assert "Take better pictures" in await page(t.owner_client, "/LIVE-1")


async def _issue_id(session, t: Team, key: str) -> int:
    from app.services import issue_views

    return (await issue_views.issue_heading(session, t.owner, key)).id


async def test_refusals_are_messages_and_store_nothing(app: Quart) -> None:
    t = await team(app)
    await _parent(t)
    for form, message in [
        ({"type": "relates_to", "issue": "LIVE-1"}, "cannot be related to itself"),
        ({"type": "blocks", "issue": "NOPE-9"}, "no issue"),
        ({"type": "sideways", "issue": "LIVE-1"}, "A relation is one of"),
    ]:
        response = await submit(t.owner_client, "/LIVE-1/relations", form)
        assert response.status_code == 302
        shown = await page(t.owner_client, "/LIVE-1")
        assert message.lower() in shown.lower(), form
        assert "No relations." in shown
    await submit(t.owner_client, "/LIVE-1/sub-issues", {"title": "   "})
    assert "No sub-issue was added" in await page(t.owner_client, "/LIVE-1")

    # The parent set on the child's page; a cycle refused there with a message.
    await submit(t.owner_client, "/LIVE-1/sub-issues", {"title": "Child"})
    refused = await submit(t.owner_client, "/LIVE-1/edit", {"field": "parent", "parent": "LIVE-2"})
    assert refused.status_code == 400
    assert "would make a cycle" in await text_of(refused)
    moved = await submit(t.owner_client, "/LIVE-2/edit", {"field": "parent", "parent": ""})
    assert moved.status_code == 302
    assert "Sub-issue of" not in await page(t.owner_client, "/LIVE-2")


async def test_relations_are_added_shown_from_both_ends_and_removed(app: Quart) -> None:
    t = await team(app)
    await _parent(t)
    async with await session_of(app) as session:
        project = await projects.project_by_key(session, t.owner, "LIVE")
        await make_issue(session, t.owner, project, title="Fix the login")
    await submit(t.owner_client, "/LIVE-2/relations", {"type": "blocks", "issue": "live-1"})
    blocked = await page(t.owner_client, "/LIVE-1")
    assert 'data-type="blocked_by"' in blocked and "Fix the login" in blocked
    assert 'data-type="blocks"' in await page(t.owner_client, "/LIVE-2")
    assert "added the relation: blocked by LIVE-2" in blocked  # the timeline, same project
    board = await page(t.owner_client, "/p/LIVE/board")
    assert board.count("blocked-mark") == 1
    twice = await submit(
        t.owner_client, "/LIVE-1/relations", {"type": "blocked_by", "issue": "LIVE-2"}
    )
    assert twice.status_code == 302
    assert "LIVE-2 already blocks LIVE-1" in await page(t.owner_client, "/LIVE-1")

    async with await session_of(app) as session:
        found = await relation_views.issue_relations(
            session, t.owner, await _issue_id(session, t, "LIVE-1"), None
        )
    [relation] = found.relations
    await submit(t.owner_client, f"/LIVE-1/relations/{relation.id}/delete")
    assert 'data-type="blocked_by"' not in await page(t.owner_client, "/LIVE-1")
    assert "blocked-mark" not in await page(t.owner_client, "/p/LIVE/board")


async def test_marking_a_duplicate_closes_it_when_asked(app: Quart) -> None:
    t = await team(app)
    await _parent(t)
    async with await session_of(app) as session:
        project = await projects.project_by_key(session, t.owner, "LIVE")
        await make_issue(session, t.owner, project, title="Same again")
    form = {"type": "duplicates", "issue": "LIVE-1", "close": "1"}
    await submit(t.owner_client, "/LIVE-2/relations", form)
    shown = await page(t.owner_client, "/LIVE-2")
    assert 'data-type="duplicates"' in shown and 'class="badge status-done">Done' in shown


async def test_a_private_issue_related_to_a_public_one_leaks_nothing_to_an_outsider(
    app: Quart,
) -> None:
    t = await team(app)
    async with await session_of(app) as session:
        public = await make_project(session, t.owner, key="PUB", is_public=True)
        await make_issue(session, t.owner, public, title="Open roadmap")
        await make_issue(
            session,
            t.owner,
            await projects.project_by_key(session, t.owner, "LIVE"),
            title="Secret merger",
        )
    for form in (
        {"type": "blocked_by", "issue": "LIVE-1"},
        {"type": "duplicates", "issue": "LIVE-1"},
    ):
        await submit(t.owner_client, "/PUB-1/relations", form)
    assert "Secret merger" in await page(t.owner_client, "/PUB-1")

    from tests.pages import log_in, sign_up

    outsider = app.test_client()
    await sign_up(outsider, "outsider@example.com")
    await log_in(outsider, "outsider@example.com")
    for path in ("/PUB-1", "/p/PUB/board", "/p/PUB?q=is:blocked", "/search?q=is:duplicate"):
        response = await outsider.get(path)
        text = await text_of(response)
        assert "Secret merger" not in text and "LIVE-1" not in text, path
    assert "No relations." in await page(outsider, "/PUB-1")
    assert "blocked-mark" not in await page(outsider, "/p/PUB/board")
    assert "PUB-1" not in await page(outsider, "/p/PUB?q=is:blocked")
