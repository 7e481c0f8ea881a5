"""Fan-out of a project's new activity rows to the open streams of this worker."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from app.live.cards import CardCache
from app.live.presence import Presence, Viewer
from app.models import Activity, Comment, Issue, Project
from app.services.issue_views import ISSUE_DETAILS
from app.services.relation_views import NO_MARKS, card_marks
from app.web.metrics import Metrics

log = logging.getLogger("issues.live")


def encode(seq: int, kind: str, data: dict[str, Any]) -> bytes:
    """One server-sent event. JSON has no raw newlines, so data fits on one line."""
    return f"id: {seq}\nevent: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def encode_state(kind: str, data: dict[str, Any]) -> bytes:
    """A server-sent event outside the log: no id (see Broker.tell)."""
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


FAN_OUT_PAGE = 500
RESYNC = object()  # queued instead of an event when a subscriber fell too far behind
CLOSE = object()  # queued when a subscriber may no longer read the project
TIMED_OUT = object()  # what Mailbox.get gives when its time-out passes first

# (project id, [(login session id, user id)]) -> the login sessions that may still read it.
AccessCheck = Callable[[int, list[tuple[int, int]]], Awaitable[set[int]]]


class Mailbox:
    """A bounded first-in, first-out box for one stream: what asyncio.Queue does, without its
    events and waiter lists, since a worker holds thousands of idle ones (and a wait for it
    needs no task of its own)."""

    __slots__ = ("items", "maxsize", "waiter")

    def __init__(self, maxsize: int) -> None:
        self.items: deque[object] = deque()
        self.maxsize = maxsize
        self.waiter: asyncio.Future[None] | None = None

    def qsize(self) -> int:
        return len(self.items)

    def empty(self) -> bool:
        return not self.items

    def put_nowait(self, item: object) -> None:
        if len(self.items) >= self.maxsize:
            raise asyncio.QueueFull
        self.items.append(item)
        if self.waiter is not None:
            _wake(self.waiter)

    def get_nowait(self) -> object:
        if not self.items:
            raise asyncio.QueueEmpty
        return self.items.popleft()

    async def get(self, within: float | None = None) -> object:
        """The next item, or TIMED_OUT if none came `within` seconds. The wait is one
        future and a timer: nothing is cancelled or raised when it runs out, so a heartbeat
        leaves no exception, traceback or frame behind (nor a reference cycle for the
        collector)."""
        loop = asyncio.get_running_loop()
        while not self.items:
            # No local name for the future: a cancelled wait's traceback keeps this frame,
            # and through a local the future, whose exception is that very one (a cycle).
            self.waiter = loop.create_future()
            timer = None if within is None else loop.call_later(within, _wake, self.waiter)
            try:
                await self.waiter
            finally:
                self.waiter = None
                if timer is not None:
                    timer.cancel()
            if timer is not None and not self.items:
                return TIMED_OUT
        return self.items.popleft()


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


@dataclass(eq=False, slots=True)
class Subscriber:
    """One open stream. Its queue holds (seq, event) pairs, presence events (bytes, which
    carry no sequence), or RESYNC."""

    project_id: int
    queue: Mailbox
    viewer: Viewer | None = None
    # Whose stream it is, for the periodic access check (None: not checked, as in tests).
    auth_session_id: int | None = None
    user_id: int | None = None
    delivered_seq: int = 0
    # Where its feed stood when it joined: a stream without a last id starts there.
    start_seq: int = 0
    overflowed: bool = False

    def offer(self, seq: int, encoded: bytes) -> None:
        if seq <= self.delivered_seq or self.overflowed:
            return
        try:
            self.queue.put_nowait((seq, encoded))
        except asyncio.QueueFull:
            # A client that does not read: drop its backlog, tell it to reload instead.
            self.overflowed = True
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(RESYNC)

    def close(self) -> None:
        """End the stream: whatever is queued is dropped, nothing more is offered."""
        self.overflowed = True
        self.queue.items.clear()
        self.queue.put_nowait(CLOSE)

    def offer_presence(self, encoded: bytes) -> None:
        # Presence is a courtesy: a full queue skips it (the next change sends it whole).
        if not self.overflowed:
            with contextlib.suppress(asyncio.QueueFull):
                self.queue.put_nowait(encoded)


@dataclass
class _ProjectFeed:
    subscribers: set[Subscriber] = field(default_factory=set)
    last_seq: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    pending: asyncio.Task[None] | None = None
    # Set by a wake that came while a fan-out ran: it must read again, or that event waits.
    dirty: bool = False


class Broker:
    """This worker's subscribers, by project. `wake(project_id)` (from a commit hook or the
    PostgreSQL listener) makes the broker read the project's new rows once and fan them out."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        cards: CardCache,
        *,
        queue_size: int = 256,
        access_check: AccessCheck | None = None,
        recheck_seconds: float = 30.0,
        metrics: Metrics | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.metrics = metrics
        self.cards = cards
        self.queue_size = queue_size
        self.access_check = access_check
        self.recheck_seconds = recheck_seconds
        self._rechecking: asyncio.Task[None] | None = None
        self.feeds: dict[int, _ProjectFeed] = defaultdict(_ProjectFeed)
        self.presence = Presence(send=self.tell)

    @property
    def subscriber_count(self) -> int:
        return sum(len(feed.subscribers) for feed in self.feeds.values())

    async def subscribe(
        self,
        project_id: int,
        viewer: Viewer | None = None,
        *,
        auth_session_id: int | None = None,
        user_id: int | None = None,
    ) -> Subscriber:
        subscriber = Subscriber(
            project_id, Mailbox(self.queue_size), viewer, auth_session_id, user_id
        )
        while True:
            feed = self.feeds[project_id]
            async with feed.lock:
                # The last subscriber may have left (and the feed been dropped) while we
                # waited: then join a new feed instead of one nobody wakes.
                if self.feeds.get(project_id) is not feed:
                    continue
                if not feed.subscribers:
                    # The feed starts at the log's end (the project's counter, which pruning
                    # never lowers); the stream's replay covers the rest.
                    async with self.sessionmaker() as session:
                        feed.last_seq = (
                            await session.scalar(
                                select(Project.last_event_seq).where(Project.id == project_id)
                            )
                            or 0
                        )
                subscriber.start_seq = feed.last_seq
                feed.subscribers.add(subscriber)
                if self.metrics is not None:
                    self.metrics.open_streams.inc()
                if viewer is not None:
                    self.presence.joined(project_id, viewer)
                return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        feed = self.feeds.get(subscriber.project_id)
        if feed is None or subscriber not in feed.subscribers:
            return
        feed.subscribers.discard(subscriber)
        if self.metrics is not None:
            self.metrics.open_streams.dec()
        if subscriber.viewer is not None:
            self.presence.left(subscriber.project_id, subscriber.viewer)
        if not feed.subscribers:
            self.feeds.pop(subscriber.project_id, None)

    def tell(self, project_id: int, encoded: bytes) -> None:
        """Send this worker's streams of a project an event that is not in the log (no id, so
        no Last-Event-ID moves): who is here, an import's progress. Such events are state, not
        history: a stream that missed one gets the state whole from the page's next read."""
        feed = self.feeds.get(project_id)
        if feed is not None:
            for subscriber in list(feed.subscribers):
                subscriber.offer_presence(encoded)

    def wake(self, project_id: int) -> None:
        """Schedule a fan-out of the project's new rows (cheap, callable from sync hooks)."""
        feed = self.feeds.get(project_id)
        if feed is None:
            return
        if feed.pending is not None and not feed.pending.done():
            feed.dirty = True
            return
        feed.pending = asyncio.get_running_loop().create_task(self.fan_out(project_id))

    async def fan_out(self, project_id: int) -> None:
        feed = self.feeds.get(project_id)
        if feed is None:
            return
        async with feed.lock:
            try:
                async with self.sessionmaker() as session:
                    while True:
                        feed.dirty = False
                        rows = await new_rows(session, project_id, feed.last_seq)
                        for row in rows:
                            # Rendered once per worker, however many subscribers there are.
                            encoded = await self.render(session, row)
                            for subscriber in list(feed.subscribers):
                                subscriber.offer(row.seq, encoded)
                            feed.last_seq = row.seq
                            if self.metrics is not None:
                                self.metrics.events_fanned_out.inc()
                                self.metrics.events_delivered.inc(len(feed.subscribers))
                        # More than a page of rows, or a wake while we read: read again.
                        if not rows or not (feed.dirty or len(rows) == FAN_OUT_PAGE):
                            break
                        await session.rollback()  # a fresh snapshot for the next read
            except Exception:  # a database hiccup: the next wake or the client's replay catches up
                log.exception("live: fan-out for project %s failed", project_id)
        # A wake that came after the last read but while this task was ending (closing its
        # session, releasing the lock) found it still running and only set `dirty`. Nothing
        # below awaits, so no wake can slip between this check and the task's end.
        if feed.dirty and self.feeds.get(project_id) is feed:
            feed.dirty = False
            feed.pending = asyncio.get_running_loop().create_task(self.fan_out(project_id))

    async def render(self, session: AsyncSession, row: Activity) -> bytes:
        return encode(row.seq, row.kind, await event_data(session, self.cards, row))

    # --- Who may still read: every stream checked in one batch per project ------------------
    def start_rechecks(self) -> None:
        if self.access_check is not None and self._rechecking is None:
            self._rechecking = asyncio.get_running_loop().create_task(self._recheck_forever())

    async def _recheck_forever(self) -> None:
        while True:
            await asyncio.sleep(self.recheck_seconds)
            await self.recheck()

    async def recheck(self) -> None:
        """Close the streams whose login session ended or whose user may no longer read the
        project: two queries per project however many streams it has (one check per stream
        every 30 s made 10,000 streams cost a query every few milliseconds)."""
        if self.access_check is None:
            return
        for project_id, feed in list(self.feeds.items()):
            checked = [s for s in feed.subscribers if s.auth_session_id is not None]
            if not checked:
                continue
            pairs = sorted({(s.auth_session_id, s.user_id or 0) for s in checked})  # type: ignore[misc]
            try:
                allowed = await self.access_check(project_id, pairs)
            except Exception:  # the database is away: keep the streams, check again later
                log.warning("live: access check for project %s failed", project_id, exc_info=True)
                continue
            for subscriber in checked:
                if subscriber.auth_session_id not in allowed:
                    subscriber.close()

    def close_streams_of(self, user_id: int) -> int:
        """End every stream of this user in this worker at once (their account was closed:
        the periodic check would end them too, up to SSE_RECHECK_SECONDS later). Returns how
        many; cheap enough for a rare admin action, a pass over this worker's streams."""
        closed = 0
        for feed in list(self.feeds.values()):
            for subscriber in list(feed.subscribers):
                if subscriber.user_id == user_id:
                    subscriber.close()
                    closed += 1
        return closed

    async def close(self) -> None:
        self.presence.close()
        if self._rechecking is not None:
            self._rechecking.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._rechecking
        for feed in self.feeds.values():
            if feed.pending is not None:
                feed.pending.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await feed.pending


async def new_rows(
    session: AsyncSession, project_id: int, after_seq: int, limit: int = FAN_OUT_PAGE
) -> list[Activity]:
    return list(
        await session.scalars(
            select(Activity)
            .where(Activity.project_id == project_id, Activity.seq > after_seq)
            .options(selectinload(Activity.actor))
            .order_by(Activity.seq)
            .limit(limit)
        )
    )


async def event_data(session: AsyncSession, cards: CardCache, row: Activity) -> dict[str, Any]:
    """What a page needs to apply the event in place: for issue events the card's HTML and
    its place; for comments, the comment's HTML."""
    data: dict[str, Any] = {
        "seq": row.seq,
        "kind": row.kind,
        "actor": row.actor.display_name if row.actor else None,
    }
    if row.issue_id is None:
        return data
    issue = await session.scalar(
        select(Issue).where(Issue.id == row.issue_id).options(*ISSUE_DETAILS)
    )
    if issue is None:
        return data
    data.update(
        issue_id=issue.id,
        key=issue.key,
        version=issue.version,
        status_id=issue.status_id,
        position=issue.position,
        card=str(
            await cards.render(
                issue, (await card_marks(session, [issue.id])).get(issue.id, NO_MARKS)
            )
        ),
    )
    if row.kind == "comment.added":
        comment = await session.get(Comment, row.payload.get("comment_id"))
        if comment is not None and comment.deleted_at is None:
            from app.rendering.markdown import render_markdown

            data["comment"] = {"id": comment.id, "html": str(render_markdown(comment.body))}
    return data
