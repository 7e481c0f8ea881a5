"""The project's event stream through Quart's test client, on both backends."""

from __future__ import annotations

import asyncio
import json
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from quart import Quart

from app import create_app
from app.live.broker import RESYNC
from app.services import comments, issues, projects
from app.services.issues import IssueChanges
from tests.conftest import app_settings
from tests.factories import add_member, make_issue, make_project, make_user
from tests.mailcatcher import MailCatcher
from tests.pages import PASSWORD, log_in
from tests.waiting import eventually


@dataclass
class Event:
    id: int | None
    kind: str
    data: dict[str, Any]


class Stream:
    """An open event stream; `events(n)` reads the next n events (comments skipped)."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.buffer = ""
        self.chunks: list[str] = []
        self.ended = False

    async def _more(self, wait: float) -> None:
        chunk = await asyncio.wait_for(self.connection.receive(), wait)
        if not chunk:
            self.ended = True
        text = chunk.decode()
        self.chunks.append(text)
        self.buffer += text

    async def events(self, count: int, wait: float = 5) -> list[Event]:
        found: list[Event] = []
        while len(found) < count:
            while "\n\n" not in self.buffer:
                await self._more(wait)
                if self.ended and "\n\n" not in self.buffer:
                    raise AssertionError(f"stream ended after {found}")
            block, self.buffer = self.buffer.split("\n\n", 1)
            fields = dict(
                line.split(": ", 1)
                for line in block.splitlines()
                if not line.startswith(":") and ": " in line
            )
            if "event" in fields:
                found.append(
                    Event(
                        int(fields["id"]) if "id" in fields else None,
                        fields["event"],
                        json.loads(fields.get("data", "{}")),
                    )
                )
        return found

    async def ends(self) -> bool:
        """Read until the server ends the stream (a test client's read cannot be given up
        safely, so a stream that never ends fails the test by the receive's time-out)."""
        while not self.ended:
            await self._more(5)
        return True


@asynccontextmanager
async def stream(client: Any, path: str, headers: dict[str, str] | None = None):
    async with client.request(path, headers=headers or {}) as connection:
        await connection.send_complete()
        opened = Stream(connection)
        try:
            await opened._more(5)
            yield opened
        finally:
            await connection.disconnect()


@dataclass
class Team:
    app: Quart
    owner_client: Any
    owner: Any
    member: Any
    project_id: int


async def team(app: Quart) -> Team:
    settings = app.extensions["account_settings"]
    async with app.extensions["database"].sessionmaker() as session:
        owner = await make_user(session, email="owner@example.com", display_name="Owner")
        member = await make_user(session, email="member@example.com", display_name="Member")
        for user in (owner, member):
            user.password_hash = await settings.hasher.hash(PASSWORD)
            session.add(user)
        await session.commit()
        for user in (owner, member):
            session.expunge(user)
        project = await make_project(session, owner, key="LIVE")
        await add_member(session, project, member)
        project_id = project.id
    client = app.test_client()
    assert (await log_in(client, "owner@example.com")).status_code == 302
    return Team(app, client, owner, member, project_id)


async def session_of(app: Quart):
    return app.extensions["database"].sessionmaker()


async def test_the_stream_answers_at_once_with_the_right_headers(app: Quart) -> None:
    t = await team(app)
    async with stream(t.owner_client, "/p/LIVE/events") as opened:
        assert opened.connection.status_code == 200
        headers = opened.connection.headers
        assert headers["Content-Type"] == "text/event-stream"
        assert headers["X-Accel-Buffering"] == "no"
        assert headers["Cache-Control"] == "no-store"
        assert opened.chunks[0].startswith("retry: 3000\n: connected")


async def test_every_kind_of_change_arrives_as_an_event_with_its_sequence(app: Quart) -> None:
    t = await team(app)
    async with stream(t.owner_client, "/p/LIVE/events") as opened:
        async with await session_of(app) as session:
            issue = await make_issue(
                session, t.owner, await projects.project_by_key(session, t.owner, "LIVE")
            )
            await issues.update_issue(
                session, t.owner, issue.id, IssueChanges(priority="high"), expected_version=1
            )
            done = (await projects.workflow(session, t.project_id))[-1]
            await issues.move_issue(
                session, t.owner, issue.id, status_id=done.id, before_id=None, expected_version=2
            )
            await comments.add_comment(session, t.owner, issue.id, "Shipped **today**")
        events = await opened.events(4)
    assert [(e.id, e.kind) for e in events] == [
        (2, "issue.created"),
        (3, "issue.updated"),
        (4, "issue.moved"),
        (5, "comment.added"),
    ]
    moved = events[2].data
    assert moved["key"] == "LIVE-1" and moved["status_id"] == done.id and moved["version"] == 3
    assert 'data-issue-id="' in moved["card"] and "LIVE-1" in moved["card"]
    assert "<strong>today</strong>" in events[3].data["comment"]["html"]


async def test_a_reconnecting_client_gets_what_it_missed_in_order_then_live_ones(
    app: Quart,
) -> None:
    t = await team(app)
    async with await session_of(app) as session:
        project = await projects.project_by_key(session, t.owner, "LIVE")
        for _ in range(4):
            await make_issue(session, t.owner, project)  # seqs 2..5
    for header in ({"Last-Event-ID": "3"}, None):
        path = "/p/LIVE/events" + ("" if header else "?last_event_id=3")
        async with stream(t.owner_client, path, header) as opened:
            assert [e.id for e in await opened.events(2)] == [4, 5]
            async with await session_of(app) as session:
                await make_issue(
                    session, t.owner, await projects.project_by_key(session, t.owner, "LIVE")
                )
            [live] = await opened.events(1)
            assert live.kind == "issue.created" and live.id in (6, 7)


async def test_concurrent_writers_then_replay_equals_what_live_subscribers_saw(app: Quart) -> None:
    t = await team(app)
    writers = 4
    per_writer = 5
    async with stream(t.owner_client, "/p/LIVE/events?last_event_id=1") as live:

        async def write() -> None:
            async with await session_of(app) as session:
                for n in range(per_writer):
                    await issues.create_issue(session, t.owner, t.project_id, title=f"t{n}")

        await asyncio.gather(*(write() for _ in range(writers)))
        seen_live = [e.id for e in await live.events(writers * per_writer)]
    async with stream(t.owner_client, "/p/LIVE/events?last_event_id=1") as replay:
        replayed = [e.id for e in await replay.events(writers * per_writer)]
    assert seen_live == replayed == list(range(2, 2 + writers * per_writer))


async def test_a_client_past_the_log_gets_resync(app: Quart) -> None:
    t = await team(app)
    async with stream(t.owner_client, "/p/LIVE/events?last_event_id=999") as opened:
        [event] = await opened.events(1)
        assert event.kind == "resync"
        assert await opened.ends()


async def test_a_client_too_far_behind_gets_resync(database_url: str, mailbox: MailCatcher) -> None:
    app = create_app("testing", **app_settings(database_url, mailbox, SSE_REPLAY_LIMIT=3))
    async with app.test_app():
        t = await team(app)
        async with await session_of(app) as session:
            project = await projects.project_by_key(session, t.owner, "LIVE")
            for _ in range(5):
                await make_issue(session, t.owner, project)
        async with stream(t.owner_client, "/p/LIVE/events?last_event_id=0") as opened:
            assert [e.kind for e in await opened.events(1)] == ["resync"]


async def test_a_removed_member_s_stream_is_closed(database_url: str, mailbox: MailCatcher) -> None:
    app = create_app(
        "testing",
        **app_settings(database_url, mailbox, SSE_RECHECK_SECONDS=0.2, SSE_HEARTBEAT_SECONDS=0.1),
    )
    async with app.test_app():
        t = await team(app)
        member_client = app.test_client()
        assert (await log_in(member_client, "member@example.com")).status_code == 302
        async with stream(member_client, "/p/LIVE/events") as opened:
            await opened._more(2)  # open, with heartbeats
            assert not opened.ended
            async with await session_of(app) as session:
                await projects.remove_member(session, t.owner, t.project_id, t.member.id)
                await make_issue(
                    session, t.owner, await projects.project_by_key(session, t.owner, "LIVE")
                )
            assert await opened.ends()
        assert app.extensions["broker"].subscriber_count == 0


async def test_a_slow_client_is_bounded_and_told_to_resync(
    database_url: str, mailbox: MailCatcher
) -> None:
    # The test client buffers whatever the server yields, so a client that does not read is
    # played by a subscriber of the broker that nobody drains.
    app = create_app("testing", **app_settings(database_url, mailbox, SSE_QUEUE_SIZE=2))
    async with app.test_app():
        t = await team(app)
        broker = app.extensions["broker"]
        stuck = await broker.subscribe(t.project_id)
        reader = await broker.subscribe(t.project_id)
        async with await session_of(app) as session:
            project = await projects.project_by_key(session, t.owner, "LIVE")
            for _ in range(6):
                await make_issue(session, t.owner, project)
                assert await eventually(lambda: not reader.queue.empty())
                while not reader.queue.empty():  # this one keeps up
                    reader.queue.get_nowait()
        assert stuck.overflowed and stuck.queue.qsize() == 1
        assert stuck.queue.get_nowait() is RESYNC
        assert not reader.overflowed
        broker.unsubscribe(stuck)
        broker.unsubscribe(reader)
        assert broker.subscriber_count == 0


async def test_subscribers_are_counted_down_when_clients_leave(app: Quart) -> None:
    t = await team(app)
    broker = app.extensions["broker"]
    async with stream(t.owner_client, "/p/LIVE/events"), stream(t.owner_client, "/p/LIVE/events"):
        assert broker.subscriber_count == 2
    assert await eventually(lambda: broker.subscriber_count == 0)


@pytest.mark.parametrize("who", ["anonymous", "outsider"])
async def test_only_people_who_may_read_may_subscribe(app: Quart, who: str) -> None:
    await team(app)
    client = app.test_client()
    if who == "outsider":
        async with await session_of(app) as session:
            outsider = await make_user(session, email="out@example.com")
            outsider.password_hash = await app.extensions["account_settings"].hasher.hash(PASSWORD)
            session.add(outsider)
            await session.commit()
        await log_in(client, "out@example.com")
    response = await client.get("/p/LIVE/events")
    assert response.status_code == (302 if who == "anonymous" else 404)


async def test_a_commit_during_a_fan_out_is_not_left_behind(
    app: Quart, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.live import broker as broker_module

    t = await team(app)
    broker = app.extensions["broker"]
    subscriber = await broker.subscribe(t.project_id)
    read_rows = broker_module.new_rows
    reading = asyncio.Event()

    async def slow_read(*args: Any, **kwargs: Any) -> list:
        rows = await read_rows(*args, **kwargs)
        reading.set()
        await asyncio.sleep(0.3)  # a slow database: the next commit lands meanwhile
        return rows

    monkeypatch.setattr(broker_module, "new_rows", slow_read)
    async with await session_of(app) as session:
        project = await projects.project_by_key(session, t.owner, "LIVE")
        await make_issue(session, t.owner, project)
        await asyncio.wait_for(reading.wait(), 5)  # the first one's fan-out is under way
        await make_issue(session, t.owner, project)
    received = []
    for _ in range(2):
        seq, _ = await asyncio.wait_for(subscriber.queue.get(), 5)
        received.append(seq)
    assert received == [2, 3]
    broker.unsubscribe(subscriber)


async def test_a_subscriber_never_joins_a_feed_that_was_dropped(app: Quart) -> None:
    t = await team(app)
    broker = app.extensions["broker"]
    first = await broker.subscribe(t.project_id)
    feed = broker.feeds[t.project_id]
    async with feed.lock:  # a fan-out is running...
        joining = asyncio.create_task(broker.subscribe(t.project_id))
        await asyncio.sleep(0.05)
        broker.unsubscribe(first)  # ...and the last subscriber leaves meanwhile
    second = await joining
    assert second in broker.feeds[t.project_id].subscribers
    async with await session_of(app) as session:
        await make_issue(session, t.owner, await projects.project_by_key(session, t.owner, "LIVE"))
    seq, _ = await asyncio.wait_for(second.queue.get(), 5)
    assert seq == 2
    broker.unsubscribe(second)


async def test_a_stream_whose_replay_meets_a_database_outage_ends_quietly(
    app: Quart, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import OperationalError

    from app.live import stream as stream_module

    t = await team(app)

    async def unavailable(*args: Any, **kwargs: Any) -> list:
        raise OperationalError("SELECT ...", {}, Exception("the pool is empty"))

    monkeypatch.setattr(stream_module, "new_rows", unavailable)
    async with stream(t.owner_client, "/p/LIVE/events?last_event_id=1") as opened:
        # The browser comes back after the retry hint, from its last id: nothing is lost.
        assert opened.chunks[0].startswith("retry: 3000")
        assert await opened.ends()
    assert app.extensions["broker"].subscriber_count == 0
