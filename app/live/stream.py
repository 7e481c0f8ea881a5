"""One client's event stream: replay from Last-Event-ID, then live events, heartbeats, and
an access check every little while."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from app.live.broker import CLOSE, RESYNC, TIMED_OUT, Broker, Subscriber, new_rows
from app.live.presence import Viewer
from app.models import Project, User
from app.models.issue import issue_key_pattern

log = logging.getLogger("issues.live")

# What a stream may meet at the database when it is away or overloaded.
DATABASE_TROUBLE = (SQLAlchemyError, OSError)

RESYNC_EVENT = b"event: resync\ndata: {}\n\n"
HEARTBEAT = b": ping\n\n"

# The pages a stream may say it belongs to, for presence: the board or one issue.
VIEW_ISSUE_KEY = re.compile(issue_key_pattern())


@dataclass(frozen=True)
class StreamSettings:
    heartbeat: float = 15.0
    retry_ms: int = 3000
    replay_limit: int = 1000

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> StreamSettings:
        """The app's SSE_* settings, as both stream paths serve them."""
        return cls(
            heartbeat=config["SSE_HEARTBEAT_SECONDS"],
            retry_ms=config["SSE_RETRY_MILLISECONDS"],
            replay_limit=config["SSE_REPLAY_LIMIT"],
        )


def last_event_id_from(raw: str | None) -> int | None:
    """The id a client last saw (its Last-Event-ID header, else ?last_event_id=); None: from
    now on. Anything but a short run of digits counts as none."""
    raw = raw or ""
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 9 else None


def present_as(user: User, view: str) -> Viewer | None:
    """How `user` shows to the project's others on the page `view` ("board" or an issue key);
    None for any other page."""
    if view == "board" or VIEW_ISSUE_KEY.fullmatch(view):
        return Viewer(user.id, user.display_name, user.initials, view)
    return None


class EventStream:
    """The body of one stream: `chunks()` to send, `end()` when the client has gone (a server
    that cannot cancel the sending task says so this way, and the stream ends at its next wait)."""

    __slots__ = (
        "auth_session_id",
        "broker",
        "ended",
        "last_event_id",
        "project_id",
        "settings",
        "subscriber",
        "user_id",
        "viewer",
    )

    def __init__(
        self,
        broker: Broker,
        project_id: int,
        last_event_id: int | None,
        settings: StreamSettings,
        viewer: Viewer | None = None,
        *,
        auth_session_id: int | None = None,
        user_id: int | None = None,
    ) -> None:
        self.broker, self.project_id, self.settings = broker, project_id, settings
        self.last_event_id, self.viewer = last_event_id, viewer
        self.auth_session_id, self.user_id = auth_session_id, user_id
        self.subscriber: Subscriber | None = None
        self.ended = False

    def end(self) -> None:
        self.ended = True
        if self.subscriber is not None:
            self.subscriber.close()

    async def chunks(self) -> AsyncIterator[bytes]:
        """Every event of the project after `last_event_id` (None: from now on), in order,
        exactly once, then live ones. Ends (the browser reconnects) after a `resync`, or when
        the broker's periodic check finds that the login session (`auth_session_id`) has ended
        or its user may no longer read the project. A `viewer` is announced to the others."""
        broker, settings = self.broker, self.settings
        try:
            subscriber = await broker.subscribe(
                self.project_id,
                self.viewer,
                auth_session_id=self.auth_session_id,
                user_id=self.user_id,
            )
        except DATABASE_TROUBLE as error:
            log.warning("live: a stream could not start (%s); the browser will come back", error)
            return
        self.subscriber = subscriber
        if self.ended:  # gone while we subscribed
            subscriber.close()
        try:
            yield f"retry: {settings.retry_ms}\n: connected\n\n".encode()
            try:
                async for replayed in _replay(
                    broker, subscriber, self.project_id, self.last_event_id, settings
                ):
                    yield replayed
                    if replayed is RESYNC_EVENT:
                        return
            except DATABASE_TROUBLE as error:
                # Busy or away (thousands reconnecting at once can empty the pool): end here;
                # the browser comes back after `retry:` with its last id and loses nothing.
                log.warning(
                    "live: a stream's replay failed (%s); the browser will come back", error
                )
                return

            while True:
                # A timer, not asyncio.timeout: an idle heartbeat raises and stores nothing.
                item = await subscriber.queue.get(within=settings.heartbeat)
                if item is TIMED_OUT:
                    yield HEARTBEAT
                    continue
                if item is CLOSE:
                    return
                if item is RESYNC:
                    yield RESYNC_EVENT
                    return
                if isinstance(item, bytes):  # presence: no sequence of its own
                    yield item
                    continue
                seq, encoded = item  # type: ignore[misc]
                if seq <= subscriber.delivered_seq:
                    continue  # already sent by the replay
                subscriber.delivered_seq = seq
                yield encoded
        finally:
            broker.unsubscribe(subscriber)
            self.subscriber = None


def event_stream(
    broker: Broker,
    project_id: int,
    last_event_id: int | None,
    settings: StreamSettings,
    viewer: Viewer | None = None,
    *,
    auth_session_id: int | None = None,
    user_id: int | None = None,
) -> AsyncIterator[bytes]:
    """The chunks of a new EventStream (for a server that ends a stream by cancelling it)."""
    return EventStream(
        broker,
        project_id,
        last_event_id,
        settings,
        viewer,
        auth_session_id=auth_session_id,
        user_id=user_id,
    ).chunks()


async def _replay(
    broker: Broker,
    subscriber: Subscriber,
    project_id: int,
    last_event_id: int | None,
    settings: StreamSettings,
) -> AsyncIterator[bytes]:
    """What the client missed after `last_event_id`, or RESYNC_EVENT when that cannot be
    told (it is ahead of the log, too far behind it, or behind pruned rows)."""
    async with broker.sessionmaker() as session:
        # The project's counter, not the newest row: pruning may have deleted the rows of
        # a project that has been quiet for a while, but never lowers its counter.
        latest = (
            await session.scalar(select(Project.last_event_seq).where(Project.id == project_id))
            or 0
        )
        if last_event_id is None:
            # From where the feed stood when we joined: a commit since then is either
            # replayed here or queued to us, never neither.
            last_event_id = subscriber.start_seq
        missed = await new_rows(session, project_id, last_event_id, settings.replay_limit + 1)
        # Start afresh when the client is ahead of the log (another database), too far
        # behind it, or behind rows that were pruned: each project's numbers are otherwise
        # contiguous (its counter row is locked until the writing transaction commits).
        complete = all(row.seq == last_event_id + n for n, row in enumerate(missed, 1)) and (
            last_event_id + len(missed) >= latest
        )
        if last_event_id > latest or len(missed) > settings.replay_limit or not complete:
            yield RESYNC_EVENT
            return
        for row in missed:
            yield await broker.render(session, row)
            subscriber.delivered_seq = row.seq
    subscriber.delivered_seq = max(subscriber.delivered_seq, last_event_id)
