"""One client's event stream: replay from Last-Event-ID, then live events, heartbeats, and
an access check every little while."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy import func, select

from app.live.broker import RESYNC, Broker, new_rows
from app.live.presence import Viewer
from app.models import Activity

RESYNC_EVENT = b"event: resync\ndata: {}\n\n"
HEARTBEAT = b": ping\n\n"


@dataclass(frozen=True)
class StreamSettings:
    heartbeat: float = 15.0
    recheck: float = 30.0
    retry_ms: int = 3000
    replay_limit: int = 1000


async def event_stream(
    broker: Broker,
    project_id: int,
    last_event_id: int | None,
    still_allowed: Callable[[], Awaitable[bool]],
    settings: StreamSettings,
    viewer: Viewer | None = None,
) -> AsyncIterator[bytes]:
    """Every event of the project after `last_event_id` (None: from now on), in order,
    exactly once, then live ones. Ends (the browser reconnects) after a `resync`, or when
    `still_allowed` says no. A `viewer` is announced to the project's other viewers."""
    subscriber = await broker.subscribe(project_id, viewer)
    try:
        yield f"retry: {settings.retry_ms}\n: connected\n\n".encode()
        async with broker.sessionmaker() as session:
            latest = await session.scalar(
                select(func.coalesce(func.max(Activity.seq), 0)).where(
                    Activity.project_id == project_id
                )
            )
            if last_event_id is None:
                # From where the feed stood when we joined: a commit since then is either
                # replayed here or queued to us, never neither.
                last_event_id = subscriber.start_seq
            missed = await new_rows(session, project_id, last_event_id, settings.replay_limit + 1)
            # Ahead of the log (another database), too far behind it, or behind its retained
            # window (pruned rows leave a gap: sequence numbers are otherwise contiguous,
            # since each project's counter row is locked until its transaction commits).
            pruned_away = (missed[0].seq if missed else latest + 1) != last_event_id + 1
            if (
                last_event_id > latest
                or len(missed) > settings.replay_limit
                or (last_event_id < latest and pruned_away)
            ):
                yield RESYNC_EVENT
                return
            for row in missed:
                yield await broker.render(session, row)
                subscriber.delivered_seq = row.seq
        subscriber.delivered_seq = max(subscriber.delivered_seq, last_event_id)

        next_check = time.monotonic() + settings.recheck
        while True:
            wait = max(0.0, min(settings.heartbeat, next_check - time.monotonic()))
            try:
                async with asyncio.timeout(wait):
                    item = await subscriber.queue.get()
            except TimeoutError:
                if time.monotonic() >= next_check:
                    if not await still_allowed():
                        return
                    next_check = time.monotonic() + settings.recheck
                else:
                    yield HEARTBEAT
                continue
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
