"""The inbox pages and the header's live count: tabs, mark read / done (htmx and plain forms),
someone else's entry refused, opening an issue reads it, and the count stream woken by a
notification another client commits."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest_asyncio
from quart import Quart
from quart.typing import TestClientProtocol as Client

from app.models import Membership, User
from app.services import issues, login_sessions
from tests.factories import add_member, make_project, make_user
from tests.pages import PASSWORD, csrf_token, log_in, submit, text_of
from tests.waiting import eventually


@pytest_asyncio.fixture
async def world(app: Quart) -> dict[str, Any]:
    async with app.extensions["database"].sessionmaker() as session:
        hashed = await app.extensions["account_settings"].hasher.hash(PASSWORD)
        ann = await make_user(
            session, email="ann@example.com", display_name="Ann", password_hash=hashed
        )
        bob = await make_user(
            session, email="bob@example.com", display_name="Bob", password_hash=hashed
        )
        cat = await make_user(
            session, email="cat@example.com", display_name="Cat", password_hash=hashed
        )
        project = await make_project(session, bob, key="SEC")
        await add_member(session, project, ann)
        await add_member(session, project, cat)
        return {"ann": ann, "bob": bob, "cat": cat, "project": project}


async def logged_in(app: Quart, email: str) -> Client:
    client = app.test_client()
    assert (await log_in(client, email)).status_code == 302
    return client


async def assign(app: Quart, world: dict[str, Any], title: str, to: str = "ann") -> int:
    async with app.extensions["database"].sessionmaker() as session:
        issue = await issues.create_issue(
            session, world["bob"], world["project"].id, title=title, assignee_id=world[to].id
        )
        return issue.id


def badge_label(page: str) -> str:
    match = re.search(r'data-inbox-badge[^>]*aria-label="([^"]+)"', page, re.S) or re.search(
        r'aria-label="(Inbox[^"]*)"', page
    )
    assert match is not None
    return match.group(1)


async def test_the_inbox_needs_a_login(client: Client) -> None:
    for path in ("/inbox/", "/inbox/events", "/inbox/count"):
        answer = await client.get(path)
        assert answer.status_code in (302, 401), path


async def test_empty_inbox_and_the_header_badge(app: Quart, world: dict[str, Any]) -> None:
    ann = await logged_in(app, "ann@example.com")
    page = await text_of(await ann.get("/inbox/"))
    assert "You are all caught up" in page
    assert badge_label(page) == "Inbox, no unread"
    await assign(app, world, "Launch plan")
    await assign(app, world, "Budget")
    page = await text_of(await ann.get("/inbox/"))
    assert badge_label(page) == "Inbox, 2 unread"
    assert "Launch plan" in page and "Budget" in page and "assigned to you" in page
    assert page.index("Budget") < page.index("Launch plan")  # newest first


async def test_mark_read_done_and_all_read_with_plain_forms(
    app: Quart, world: dict[str, Any]
) -> None:
    one = await assign(app, world, "One")
    two = await assign(app, world, "Two")
    three = await assign(app, world, "Three")
    ann = await logged_in(app, "ann@example.com")
    answer = await submit(ann, f"/inbox/{one}/read", {"tab": "unread"})
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/inbox/?tab=unread")
    assert (await (await ann.get("/inbox/count")).get_json())["unread"] == 2
    unread = await text_of(await ann.get("/inbox/?tab=unread"))
    assert "One" not in unread and "Two" in unread
    assert (await submit(ann, f"/inbox/{two}/done", {"tab": "all"})).status_code == 302
    every = await text_of(await ann.get("/inbox/?tab=all"))
    assert "One" in every and "Two" not in every and "Three" in every
    assert "Two" in await text_of(await ann.get("/inbox/?tab=done"))
    assert (await submit(ann, "/inbox/read-all", {"tab": "unread"})).status_code == 302
    assert (await (await ann.get("/inbox/count")).get_json())["unread"] == 0
    assert three  # listed on All, read
    assert 'class="inbox-entry unread"' not in await text_of(await ann.get("/inbox/?tab=all"))


async def test_htmx_mark_read_and_done_answer_in_place(app: Quart, world: dict[str, Any]) -> None:
    issue_id = await assign(app, world, "In place")
    ann = await logged_in(app, "ann@example.com")
    token = await csrf_token(ann)
    htmx = {"HX-Request": "true"}
    answer = await ann.post(
        f"/inbox/{issue_id}/read", form={"csrf_token": token, "tab": "all"}, headers=htmx
    )
    assert answer.status_code == 200
    entry = await text_of(answer)
    assert f'id="inbox-entry-{issue_id}"' in entry and "Mark read" not in entry
    answer = await ann.post(
        f"/inbox/{issue_id}/done", form={"csrf_token": token, "tab": "all"}, headers=htmx
    )
    assert answer.status_code == 200 and await text_of(answer) == ""


async def test_someone_elses_entry_is_refused(app: Quart, world: dict[str, Any]) -> None:
    issue_id = await assign(app, world, "Ann's")
    cat = await logged_in(app, "cat@example.com")
    for action in ("read", "done"):
        assert (await submit(cat, f"/inbox/{issue_id}/{action}")).status_code == 404
    assert (await cat.get(f"/inbox/{issue_id}")).status_code == 404
    ann = await logged_in(app, "ann@example.com")
    assert (await (await ann.get("/inbox/count")).get_json())["unread"] == 1
    assert (await submit(ann, "/inbox/999999/read")).status_code == 404


async def test_opening_an_issue_from_the_inbox_reads_it(app: Quart, world: dict[str, Any]) -> None:
    issue_id = await assign(app, world, "Open me")
    ann = await logged_in(app, "ann@example.com")
    answer = await ann.get(f"/inbox/{issue_id}")
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/SEC-1")
    assert (await (await ann.get("/inbox/count")).get_json())["unread"] == 0


async def test_removed_from_the_project_the_inbox_shows_nothing_of_it(
    app: Quart, world: dict[str, Any]
) -> None:
    await assign(app, world, "Secret launch plan")
    async with app.extensions["database"].sessionmaker() as session:
        await session.execute(
            Membership.__table__.delete().where(Membership.user_id == world["ann"].id)
        )
        await session.commit()
    ann = await logged_in(app, "ann@example.com")
    for tab in ("unread", "all", "done"):
        assert "Secret launch plan" not in await text_of(await ann.get(f"/inbox/?tab={tab}"))
    assert badge_label(await text_of(await ann.get("/inbox/"))) == "Inbox, no unread"


async def test_with_mail_off_the_inbox_keeps_working(app: Quart, world: dict[str, Any]) -> None:
    ann = await logged_in(app, "ann@example.com")
    account = await text_of(await ann.get("/account/"))
    assert "email me" in account.lower() and "inbox" in account.lower()
    assert (await submit(ann, "/account/notifications", {})).status_code == 302  # box unticked
    async with app.extensions["database"].sessionmaker() as session:
        assert not (await session.get(User, world["ann"].id)).notify_by_email
    await assign(app, world, "Quietly assigned")
    assert "Quietly assigned" in await text_of(await ann.get("/inbox/"))


# --- The live count -------------------------------------------------------------------------


async def next_count(connection: Any) -> int:
    """The unread count of the stream's next count event (heartbeats skipped)."""
    while True:
        chunk = (await asyncio.wait_for(connection.receive(), 5)).decode()
        for block in chunk.split("\n\n"):
            if "event: count" in block:
                data = block.split("data: ", 1)[1]
                return json.loads(data)["unread"]


async def test_the_count_stream_is_woken_by_a_notification_from_another_client(
    app: Quart, world: dict[str, Any]
) -> None:
    ann = await logged_in(app, "ann@example.com")
    other_tab = await logged_in(app, "ann@example.com")
    bob = await logged_in(app, "bob@example.com")
    async with ann.request("/inbox/events") as connection:
        await connection.send_complete()
        assert await next_count(connection) == 0
        assert connection.headers["Content-Type"] == "text/event-stream"
        # Bob assigns her an issue through the pages.
        answer = await submit(
            bob, "/p/SEC/issues/new", {"title": "Live one", "assignee": str(world["ann"].id)}
        )
        assert answer.status_code == 302
        assert await next_count(connection) == 1
        # Read in another tab: this stream hears of it too.
        assert (await submit(other_tab, "/inbox/read-all")).status_code == 302
        assert await next_count(connection) == 0
        await connection.disconnect()
    assert app.extensions["inbox_broker"].subscriber_count == 0


async def test_the_count_stream_ends_with_the_login_session(
    app: Quart, world: dict[str, Any]
) -> None:
    ann = await logged_in(app, "ann@example.com")
    broker = app.extensions["inbox_broker"]
    async with ann.request("/inbox/events") as connection:
        await connection.send_complete()
        assert await next_count(connection) == 0
        async with app.extensions["database"].sessionmaker() as session:
            await login_sessions.revoke_sessions(session, world["ann"].id)
            await session.commit()
        await broker.recheck()
        assert await eventually(lambda: broker.subscriber_count == 0)
        await connection.disconnect()
