"""Pages' kept parts (decision 0012): served again while nothing they show has changed, and
never once something has."""

from __future__ import annotations

import re

from quart import Quart
from sqlalchemy import update

from app.blueprints.page_cache import PageCache
from app.db import utcnow
from app.models import User
from app.services import accounts, comments, issue_views, issues, projects
from app.services.issues import IssueChanges
from tests.factories import make_issue, make_user
from tests.live.test_stream import Team, session_of, team
from tests.pages import log_in, submit, text_of

CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


async def page(client, path: str) -> str:
    response = await client.get(path)
    assert response.status_code == 200, path
    return await text_of(response)


async def an_issue(t: Team, title: str = "Checkout fails") -> str:
    async with await session_of(t.app) as session:
        project = await projects.project_by_key(session, t.owner, "LIVE")
        issue = await make_issue(session, t.owner, project, title=title)
    return f"/LIVE-{issue.number}"


async def member_client(t: Team):
    client = t.app.test_client()
    assert (await log_in(client, "member@example.com")).status_code == 302
    return client


async def test_a_page_seen_again_is_not_rendered_again(app: Quart) -> None:
    t = await team(app)
    path = await an_issue(t)
    cache = app.extensions["page_cache"]
    first = await page(t.owner_client, path)
    renders = cache.renders
    assert await page(t.owner_client, path) == first
    await page(t.owner_client, "/p/LIVE/board")
    await page(t.owner_client, "/p/LIVE/board")
    await page(t.owner_client, "/p/LIVE?q=is:open")
    await page(t.owner_client, "/p/LIVE?q=is:open")
    assert cache.renders == renders + 2  # the board once, the list once


async def test_a_change_made_by_someone_else_shows_on_the_next_view(app: Quart) -> None:
    t = await team(app)
    path = await an_issue(t)
    number = int(path.rsplit("-", 1)[1])
    for view in (path, "/p/LIVE/board", "/p/LIVE?q=is:open"):
        await page(t.owner_client, view)  # kept
    async with await session_of(app) as session:
        found = await issue_views.get_issue_by_key(session, t.member, f"LIVE-{number}")
        await issues.update_issue(
            session,
            t.member,
            found.id,
            IssueChanges(title="Checkout fails on Safari"),
            expected_version=1,
        )
        await comments.add_comment(session, t.member, found.id, "Seen on **iOS 19** too")
    for view in (path, "/p/LIVE/board", "/p/LIVE?q=is:open"):
        assert "Checkout fails on Safari" in await page(t.owner_client, view), view
    assert "<strong>iOS 19</strong>" in await page(t.owner_client, path)


async def test_an_issue_page_stays_kept_while_only_other_issues_change(app: Quart) -> None:
    """Kept per state of the issue (decision 0016): a change to another issue of the project
    leaves it kept; its own change, a comment, and a change to the project itself do not."""
    t = await team(app)
    path, other = await an_issue(t), await an_issue(t, "Another one")
    cache = app.extensions["page_cache"]
    await page(t.owner_client, path)
    renders = cache.renders
    async with await session_of(app) as session:
        found = await issue_views.get_issue_by_key(session, t.member, other.lstrip("/"))
        await issues.update_issue(
            session, t.member, found.id, IssueChanges(priority="high"), expected_version=None
        )
    await page(t.owner_client, path)
    assert cache.renders == renders, "another issue's change made this page again"

    async with await session_of(app) as session:
        shown = await issue_views.get_issue_by_key(session, t.member, path.lstrip("/"))
        await comments.add_comment(session, t.member, shown.id, "Reproduced on *staging*")
    assert "<em>staging</em>" in await page(t.owner_client, path)
    async with await session_of(app) as session:
        await projects.save_label(session, t.owner, t.project_id, name="triage", color="#00ff00")
    assert ">triage<" in await page(t.owner_client, path)  # a change to the project itself


async def test_an_issue_named_in_a_kept_page_becomes_a_link_once_it_exists(app: Quart) -> None:
    t = await team(app)
    path = await an_issue(t)
    number = int(path.rsplit("-", 1)[1])
    named = f"LIVE-{number + 1}"  # the next issue, not made yet
    async with await session_of(app) as session:
        found = await issue_views.get_issue_by_key(session, t.member, path.lstrip("/"))
        await comments.add_comment(session, t.member, found.id, f"Same as {named}?")
    assert f'href="/{named}"' not in await page(t.owner_client, path)  # kept so
    assert f"/{named}" == await an_issue(t, "The same bug")
    assert f'href="/{named}"' in await page(t.owner_client, path)


async def test_each_browser_gets_its_own_csrf_token_in_a_kept_page(app: Quart) -> None:
    t = await team(app)
    path = await an_issue(t)
    other_browser = app.test_client()
    assert (await log_in(other_browser, "owner@example.com")).status_code == 302
    first, second = await page(t.owner_client, path), await page(other_browser, path)
    assert app.extensions["page_cache"].csrf_placeholder not in first + second
    first_tokens, second_tokens = set(CSRF_INPUT.findall(first)), set(CSRF_INPUT.findall(second))
    assert len(first_tokens) == len(second_tokens) == 1 and first_tokens != second_tokens
    # And the forms of the kept page work: a comment from the second browser is saved.
    posted = await other_browser.post(
        f"{path}/comments", form={"csrf_token": second_tokens.pop(), "body": "From the second"}
    )
    assert posted.status_code == 302
    assert "From the second" in await page(t.owner_client, path)


async def test_watching_and_labels_show_at_once(app: Quart) -> None:
    t = await team(app)
    path = await an_issue(t)
    assert ">Watch</button>" not in await page(t.owner_client, path)  # the reporter watches
    assert (await submit(t.owner_client, f"{path}/watch", {"watching": "0"})).status_code == 302
    assert ">Watch</button>" in await page(t.owner_client, path)

    async with await session_of(app) as session:
        bug = await projects.save_label(session, t.owner, t.project_id, name="bug", color="#ff0000")
    assert ">bug<" in await page(t.owner_client, path)  # offered in the labels field
    async with await session_of(app) as session:
        await projects.save_label(
            session, t.owner, t.project_id, name="defect", color="#ff0000", label_id=bug.id
        )
    shown = await page(t.owner_client, path)
    assert ">defect<" in shown and ">bug<" not in shown


async def test_someone_who_loses_access_gets_no_kept_page(app: Quart) -> None:
    t = await team(app)
    path = await an_issue(t)
    member = await member_client(t)
    for view in (path, "/p/LIVE/board", "/p/LIVE?q=is:open"):
        await page(member, view)
    async with await session_of(app) as session:
        await projects.remove_member(session, t.owner, t.project_id, t.member.id)
    for view in (path, "/p/LIVE/board", "/p/LIVE?q=is:open"):
        assert (await member.get(view)).status_code == 404, view


async def test_controls_appear_once_the_address_is_validated(app: Quart) -> None:
    t = await team(app)
    path = await an_issue(t)
    async with await session_of(app) as session:
        await session.execute(
            update(User).where(User.id == t.member.id).values(email_verified_at=None)
        )
        await session.commit()
    member = await member_client(t)
    assert "Add a comment" not in await page(member, path)
    async with await session_of(app) as session:
        await session.execute(
            update(User).where(User.id == t.member.id).values(email_verified_at=utcnow())
        )
        await session.commit()
    assert "Add a comment" in await page(member, path)


async def test_a_renamed_viewer_sees_their_new_name_at_once(app: Quart) -> None:
    t = await team(app)
    path = await an_issue(t)
    assert "opened by Owner" in await page(t.owner_client, path)
    async with await session_of(app) as session:
        await accounts.change_display_name(session, t.owner.id, "Olive Owner")
    assert "opened by Olive Owner" in await page(t.owner_client, path)


async def test_other_peoples_names_are_made_again_after_the_age_limit(app: Quart) -> None:
    t = await team(app)
    path = await an_issue(t)
    member = await member_client(t)
    assert "opened by Owner" in await page(member, path)
    async with await session_of(app) as session:
        await accounts.change_display_name(session, t.owner.id, "Olive Owner")
    cache = app.extensions["page_cache"]
    assert "opened by Owner" in await page(member, path)  # within the age limit: kept
    cache.max_age_seconds = 0
    assert "opened by Olive Owner" in await page(member, path)


async def test_a_bad_query_is_refused_every_time(app: Quart) -> None:
    t = await team(app)
    for _ in range(2):
        answer = await t.owner_client.get("/p/LIVE?q=priority:soonish")
        assert answer.status_code == 400
        assert "soonish" in await text_of(answer)


async def test_a_new_member_of_another_project_sees_it_in_the_sidebar(app: Quart) -> None:
    t = await team(app)
    assert "OTHER" not in await page(t.owner_client, "/p/LIVE/board")
    async with await session_of(app) as session:
        await projects.create_project(
            session, t.owner, key="OTHER", name="Other work", is_public=False
        )
    assert "Other work" in await page(t.owner_client, "/p/LIVE/board")


def test_the_cache_keeps_its_size_bound_and_drops_the_least_recently_used() -> None:
    cache = PageCache(max_bytes=10, max_age_seconds=60)
    cache.put(("a",), "aaaa")
    cache.put(("b",), "bbbb")
    assert cache.get(("a",)) == "aaaa"  # now the most recently used
    cache.put(("c",), "cccc")
    assert cache.get(("b",)) is None and cache.get(("a",)) == "aaaa"
    assert cache.size == 8
    cache.put(("huge",), "x" * 11)  # bigger than the whole cache: not kept
    assert cache.get(("huge",)) is None and cache.size == 8
    off = PageCache(max_bytes=0, max_age_seconds=60)
    off.put(("a",), "a")
    assert off.get(("a",)) is None


async def test_a_stranger_is_never_served_a_members_page(app: Quart) -> None:
    t = await team(app)
    path = await an_issue(t)
    await page(t.owner_client, path)
    async with await session_of(app) as session:
        await make_user(session, email="stranger@example.com")
    stranger = app.test_client()
    # The factory's user has no password: give them one through a reset-free path.
    async with await session_of(app) as session:
        settings = app.extensions["account_settings"]
        await session.execute(
            update(User)
            .where(User.email == "stranger@example.com")
            .values(password_hash=await settings.hasher.hash("correct horse battery"))
        )
        await session.commit()
    assert (await log_in(stranger, "stranger@example.com")).status_code == 302
    assert (await stranger.get(path)).status_code == 404


async def test_search_results_follow_every_readable_project(app: Quart) -> None:
    t = await team(app)
    await an_issue(t, title="Checkout fails with a webhook")
    member = await member_client(t)
    cache = app.extensions["page_cache"]
    assert "Checkout fails with a webhook" in await page(member, "/search?q=webhook")
    renders = cache.renders
    await page(member, "/search?q=webhook")
    assert cache.renders == renders  # kept

    # A change in another project the member reads shows at once.
    async with await session_of(app) as session:
        other = await projects.create_project(
            session, t.owner, key="OTHER", name="Other work", is_public=True
        )
        await issues.create_issue(session, t.owner, other.id, title="Another webhook issue")
    assert "Another webhook issue" in await page(member, "/search?q=webhook")

    # And losing access to a project takes its issues out of the results.
    async with await session_of(app) as session:
        await projects.remove_member(session, t.owner, t.project_id, t.member.id)
    shown = await page(member, "/search?q=webhook")
    assert "Checkout fails with a webhook" not in shown and "Another webhook issue" in shown
