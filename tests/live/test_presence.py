"""Presence: who else has the board (or an issue) open, on one worker and across workers."""

from __future__ import annotations

import asyncio
import json

import pytest
from quart import Quart

from app import create_app
from app.live import presence as presence_module
from app.live.broker import Broker, Subscriber
from app.live.presence import ANNOUNCE_LIMIT_BYTES, Presence, Viewer
from tests.conftest import app_settings
from tests.live.test_stream import Stream, stream, team
from tests.mailcatcher import MailCatcher
from tests.pages import log_in
from tests.waiting import eventually


async def viewers_seen(opened: Stream, until: set[tuple[str, str]]) -> list[dict]:
    """Read presence events until one lists exactly `until` as (name, view) pairs."""
    for _ in range(20):
        [event] = await opened.events(1)
        assert event.kind == "presence" and event.id is None  # never moves Last-Event-ID
        if {(v["name"], v["view"]) for v in event.data["viewers"]} == until:
            return event.data["viewers"]
    raise AssertionError(f"presence never became {until}")


async def test_the_board_shows_who_else_is_looking(app: Quart) -> None:
    t = await team(app)
    member_client = app.test_client()
    assert (await log_in(member_client, "member@example.com")).status_code == 302
    async with stream(t.owner_client, "/p/LIVE/events?view=board") as owner:
        await viewers_seen(owner, {("Owner", "board")})
        async with stream(member_client, "/p/LIVE/events?view=LIVE-1") as member:
            # The member is on an issue page: the page filters by view, the event says which.
            await viewers_seen(owner, {("Owner", "board"), ("Member", "LIVE-1")})
            seen = await viewers_seen(member, {("Owner", "board"), ("Member", "LIVE-1")})
            assert {v["id"] for v in seen} == {t.owner.id, t.member.id}
        await viewers_seen(owner, {("Owner", "board")})


async def test_two_tabs_of_one_person_count_once_and_leave_once(app: Quart) -> None:
    t = await team(app)
    broker: Broker = app.extensions["broker"]
    presence = broker.presence
    async with stream(t.owner_client, "/p/LIVE/events?view=board"):
        async with stream(t.owner_client, "/p/LIVE/events?view=board"):
            assert await eventually(lambda: broker.subscriber_count == 2)
            assert [v.name for v in presence.viewers(t.project_id)] == ["Owner"]
        # Still here once the second tab has left, not merely before its leaving came through.
        assert await eventually(lambda: broker.subscriber_count == 1)
        assert [v.name for v in presence.viewers(t.project_id)] == ["Owner"]
    assert await eventually(lambda: broker.subscriber_count == 0)
    assert presence.viewers(t.project_id) == []


async def first_listing(opened: Stream, name: str) -> set[tuple[str, str]]:
    """Read presence events until one lists `name`; return whom it lists, as (name, view)."""
    for _ in range(20):
        [event] = await opened.events(1)
        viewers = {(v["name"], v["view"]) for v in event.data.get("viewers", ())}
        if event.kind == "presence" and name in {listed for listed, _ in viewers}:
            return viewers
    raise AssertionError(f"no presence event listed {name}")


async def test_a_stream_without_a_known_view_is_not_announced(app: Quart) -> None:
    t = await team(app)
    presence = app.extensions["broker"].presence
    member_client = app.test_client()
    assert (await log_in(member_client, "member@example.com")).status_code == 302
    for path in ("/p/LIVE/events", "/p/LIVE/events?view=<b>x</b>"):
        async with stream(t.owner_client, path) as unannounced:
            assert presence.viewers(t.project_id) == []
            # Silence so far could be a slow announcement. So someone who is announced joins
            # next: the first event that lists them, sent to this very stream, is taken after
            # the owner's stream began, and would list the owner too.
            async with stream(member_client, "/p/LIVE/events?view=board"):
                assert await first_listing(unannounced, "Member") == {("Member", "board")}


def test_an_announcement_fits_a_notify_whatever_the_names() -> None:
    presence = Presence(send=lambda project_id, encoded: None)
    presence.local[1] = presence_module.Counter(
        Viewer(n, "名前" * 50, "名", "board") for n in range(100)
    )
    payload = presence.announcement(1)
    assert len(payload.encode()) <= ANNOUNCE_LIMIT_BYTES
    assert 0 < len(json.loads(payload)["v"]) <= presence_module.MAX_ANNOUNCED_VIEWERS


async def next_presence(subscriber: Subscriber, names: set[str]) -> None:
    for _ in range(50):
        item = await asyncio.wait_for(subscriber.queue.get(), 5)
        if isinstance(item, bytes):
            data = json.loads(item.decode().split("data: ", 1)[1])
            if {v["name"] for v in data["viewers"]} == names:
                return
    raise AssertionError(f"presence never became {names}")


@pytest.mark.postgresql_only
async def test_presence_travels_between_workers_and_forgets_a_dead_one(
    database_url: str,
    mailbox: MailCatcher,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = create_app("testing", **app_settings(database_url, mailbox))
    second = create_app("testing", **app_settings(database_url, mailbox))
    async with first.test_app():
        t = await team(first)
        ann = Viewer(t.owner.id, "Owner", "OW", "board")
        bob = Viewer(t.member.id, "Member", "ME", "board")
        broker_a: Broker = first.extensions["broker"]
        here = await broker_a.subscribe(t.project_id, ann)
        await next_presence(here, {"Owner"})
        async with second.test_app():
            broker_b: Broker = second.extensions["broker"]
            there = await broker_b.subscribe(t.project_id, bob)
            # Each worker learns of the other's viewer: B announces, and asks A to.
            await next_presence(here, {"Owner", "Member"})
            await next_presence(there, {"Owner", "Member"})
            broker_b.unsubscribe(there)
            await next_presence(here, {"Owner"})
            # A worker that dies says nothing: its viewers go when its announcements stop.
            there = await broker_b.subscribe(t.project_id, bob)
            await next_presence(here, {"Owner", "Member"})
            broker_b.presence.announce = None  # dead: no more announcements
        monkeypatch.setattr(presence_module, "PEER_TIMEOUT_SECONDS", 0.0)
        for peer in broker_a.presence.peers[t.project_id].values():
            peer.expires_at = 0.0
        await broker_a.presence.announce_all()
        await next_presence(here, {"Owner"})
        broker_a.unsubscribe(here)
