"""Atom feeds, read back as a feed reader reads them (feedparser): public without a token,
private only with the person's token, revoked at once, never more than the person may read."""

from __future__ import annotations

import re
from typing import Any

import feedparser
import pytest_asyncio
from quart import Quart
from quart.typing import TestClientProtocol as Client
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import AuditEvent
from app.services import admin, comments, projects, relations, search
from tests.factories import add_member, make_issue, make_project, make_user
from tests.pages import PASSWORD, log_in, submit, text_of

TOKEN = re.compile(r"\?token=([0-9]+\.[0-9a-f]{40})")


@pytest_asyncio.fixture
async def world(app: Quart) -> dict[str, Any]:
    async with app.extensions["database"].sessionmaker() as session:
        hashed = await app.extensions["account_settings"].hasher.hash(PASSWORD)
        ann = await make_user(
            session, email="ann@example.com", display_name="Ann", password_hash=hashed
        )
        bob = await make_user(session, email="bob@example.com", password_hash=hashed)
        private = await make_project(session, ann, key="SEC")
        public = await make_project(session, ann, key="PUB", is_public=True)
        await add_member(session, private, bob)
        secret = await make_issue(session, ann, private, title="Secret launch plan")
        shown = await make_issue(session, ann, public, title="Public roadmap")
        await comments.add_comment(session, ann, shown.id, "A public note")
        await relations.add_relation(session, ann, shown.id, "relates_to", "SEC-1")
        return {"ann": ann, "bob": bob, "secret": secret, "shown": shown}


async def logged_in(app: Quart, email: str) -> Client:
    client = app.test_client()
    assert (await log_in(client, email)).status_code == 302
    return client


async def feed_token(client: Client) -> str:
    """Turn feed links on from the feeds page and read the token off it."""
    assert (await submit(client, "/account/feeds")).status_code == 302
    match = TOKEN.search(await text_of(await client.get("/account/feeds")))
    assert match is not None
    return match.group(1)


async def read_feed(client: Client, path: str) -> Any:
    answer = await client.get(path)
    assert answer.status_code == 200, path
    assert answer.content_type == "application/atom+xml; charset=utf-8"
    assert answer.headers["Cache-Control"] == "private, max-age=60"
    parsed = feedparser.parse(await answer.get_data())
    assert not parsed.bozo, parsed.bozo_exception
    return parsed


async def test_a_public_projects_activity_feed_opens_without_a_token(
    app: Quart, world: dict[str, Any]
) -> None:
    feed = await read_feed(app.test_client(), "/p/PUB/activity.atom")
    assert feed.feed.title == "Project PUB (PUB): activity"
    titles = [entry.title for entry in feed.entries]
    assert titles[0].startswith("PUB-1 Public roadmap: Ann added the relation")
    assert "PUB-1 Public roadmap: Ann commented" in titles
    assert titles[-2:] == [
        "PUB-1 Public roadmap: Ann created the issue",
        "PUB: Ann created the project",
    ]
    assert feed.entries[0].link == "http://issues.test/PUB-1"
    assert feed.entries[0].author == "Ann"
    assert len({entry.id for entry in feed.entries}) == len(feed.entries)
    # The relation to a private issue names neither it nor its project.
    body = await text_of(await app.test_client().get("/p/PUB/activity.atom"))
    assert "Secret" not in body and "SEC-1" not in body


async def test_a_private_projects_feed_needs_a_members_token_and_stops_when_revoked(
    app: Quart, world: dict[str, Any]
) -> None:
    anonymous = app.test_client()
    assert (await anonymous.get("/p/SEC/activity.atom")).status_code == 404
    bob = await logged_in(app, "bob@example.com")
    token = await feed_token(bob)
    feed = await read_feed(anonymous, f"/p/SEC/activity.atom?token={token}")
    assert [entry.title for entry in feed.entries] == [
        "SEC-1 Secret launch plan: Ann added the relation: relates to an issue in another project",
        "SEC-1 Secret launch plan: Ann created the issue",
        "SEC: Ann created the project",
    ]
    user_id, signature = token.split(".")
    forged = f"{user_id}.{'0' * 40}"
    someone_else = f"{world['ann'].id}.{signature}"
    for bad in (forged, someone_else, "nonsense", token + "0"):
        assert (await anonymous.get(f"/p/SEC/activity.atom?token={bad}")).status_code == 404

    renewed = await feed_token(bob)
    assert renewed != token
    assert (await anonymous.get(f"/p/SEC/activity.atom?token={token}")).status_code == 404
    assert (await anonymous.get(f"/p/SEC/activity.atom?token={renewed}")).status_code == 200
    assert (await submit(bob, "/account/feeds/off")).status_code == 302
    assert (await anonymous.get(f"/p/SEC/activity.atom?token={renewed}")).status_code == 404


async def test_a_token_reads_only_what_its_person_may_read(
    app: Quart, world: dict[str, Any], session: AsyncSession
) -> None:
    eve = await make_user(session, email="eve@example.com")
    await make_project(session, eve, key="EVE")
    ann = await logged_in(app, "ann@example.com")
    token = await feed_token(ann)
    assert (await app.test_client().get(f"/p/EVE/activity.atom?token={token}")).status_code == 404
    assert (await app.test_client().get(f"/p/NONE/activity.atom?token={token}")).status_code == 404


async def test_a_saved_search_feed_lists_its_readable_issues_newest_change_first(
    app: Quart, world: dict[str, Any], session: AsyncSession
) -> None:
    bob_user = world["bob"]
    saved = await search.save_search(
        session, bob_user, name="Everything open", query="is:open sort:created-asc"
    )
    ann_saved = await search.save_search(session, world["ann"], name="Ann's", query="is:open")
    bob = await logged_in(app, "bob@example.com")
    token = await feed_token(bob)
    feed = await read_feed(app.test_client(), f"/searches/{saved.id}.atom?token={token}")
    assert feed.feed.title == "Saved search: Everything open"
    # Last changed first (PUB-1, made second), not the saved search's created-asc order.
    assert [entry.title for entry in feed.entries] == [
        "PUB-1 Public roadmap",
        "SEC-1 Secret launch plan",
    ]
    assert feed.entries[1].summary == "Backlog, assigned to nobody"
    # Another person's saved search, and no token at all, are not there.
    assert (
        await app.test_client().get(f"/searches/{ann_saved.id}.atom?token={token}")
    ).status_code == 404
    assert (await app.test_client().get(f"/searches/{saved.id}.atom")).status_code == 404
    # Once Bob leaves the private project, its issues leave his feed.
    await projects.remove_member(session, world["ann"], world["secret"].project_id, bob_user.id)
    feed = await read_feed(app.test_client(), f"/searches/{saved.id}.atom?token={token}")
    assert [entry.title for entry in feed.entries] == ["PUB-1 Public roadmap"]


async def test_turning_feed_links_on_renewing_and_off_is_audited(
    app: Quart, world: dict[str, Any], session: AsyncSession
) -> None:
    bob = await logged_in(app, "bob@example.com")
    await feed_token(bob)
    await feed_token(bob)
    assert (await submit(bob, "/account/feeds/off")).status_code == 302
    events = await session.scalars(
        select(AuditEvent).where(AuditEvent.action.like("token.%")).order_by(AuditEvent.id)
    )
    assert [(e.action, e.detail) for e in events] == [
        ("token.created", {"kind": "feed"}),
        ("token.revoked", {"kind": "feed"}),
        ("token.created", {"kind": "feed"}),
        ("token.revoked", {"kind": "feed"}),
    ]


async def test_a_deactivated_persons_feed_links_stop_working(
    app: Quart, world: dict[str, Any], session: AsyncSession
) -> None:
    bob = await logged_in(app, "bob@example.com")
    token = await feed_token(bob)
    path = f"/p/SEC/activity.atom?token={token}"
    assert (await app.test_client().get(path)).status_code == 200
    root = await make_user(session, email="root@example.com")
    root.is_admin = True
    session.add(root)
    await session.commit()
    session.expunge(root)
    await admin.deactivate(session, root, world["bob"].id)
    assert (await app.test_client().get(path)).status_code == 404
