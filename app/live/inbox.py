"""The header's unread count, live: one small stream per open page, sent the person's count on
connect and again whenever it changes (decision 0028).

A count is state, not a log: a stream that reconnects reads it again, so nothing is replayed
and nothing is queued but the latest value. A change wakes the worker's InboxBroker by the
after-commit hook (SQLite's one process) or by PostgreSQL's NOTIFY on `issues_inbox` (every
worker); the broker reads each woken person's count once and offers it to their streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.live.broker import TIMED_OUT, Mailbox
from app.services import inbox
from app.services.notifications import INBOX_CHANNEL

log = logging.getLogger("issues.live")

__all__ = ["INBOX_CHANNEL", "InboxBroker", "InboxStream", "encode_count"]

# Of these login session ids, the ones still live: the periodic check of every open stream.
LiveCheck = Callable[[list[int]], Awaitable[set[int]]]


def encode_count(count: int) -> bytes:
    data = json.dumps({"unread": count, "label": inbox.count_label(count)}, separators=(",", ":"))
    return f"event: count\ndata: {data}\n\n".encode()


class InboxSubscriber:
    """One open count stream. Its box holds at most the newest count (older ones are
    replaced: only the latest matters) or CLOSE."""

    __slots__ = ("auth_session_id", "box", "user_id")

    def __init__(self, user_id: int, auth_session_id: int | None) -> None:
        self.user_id, self.auth_session_id = user_id, auth_session_id
        self.box = Mailbox(1)

    def offer(self, item: object) -> None:
        if self.box.items and self.box.items[0] is CLOSE:
            return  # closed stays closed
        self.box.items.clear()
        self.box.put_nowait(item)


CLOSE = object()


class InboxBroker:
    """This worker's count streams, by person. `wake(user_ids)` (from a commit hook or the
    PostgreSQL listener) reads each person's count once, however many tabs they have open."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        live_check: LiveCheck | None = None,
        recheck_seconds: float = 30.0,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.live_check = live_check
        self.recheck_seconds = recheck_seconds
        self.streams: dict[int, set[InboxSubscriber]] = {}
        self._pending: dict[int, asyncio.Task[None]] = {}
        self._dirty: set[int] = set()
        self._rechecking: asyncio.Task[None] | None = None

    @property
    def subscriber_count(self) -> int:
        return sum(len(found) for found in self.streams.values())

    def subscribe(self, user_id: int, auth_session_id: int | None = None) -> InboxSubscriber:
        subscriber = InboxSubscriber(user_id, auth_session_id)
        self.streams.setdefault(user_id, set()).add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: InboxSubscriber) -> None:
        found = self.streams.get(subscriber.user_id)
        if found is None:
            return
        found.discard(subscriber)
        if not found:
            del self.streams[subscriber.user_id]

    async def count(self, user_id: int) -> int:
        async with self.sessionmaker() as session:
            return await inbox.unread_count(session, user_id)

    def wake(self, user_ids: Iterable[int]) -> None:
        """Schedule a fresh count for each of these people who has a stream here (cheap,
        callable from sync hooks)."""
        for user_id in user_ids:
            if user_id not in self.streams:
                continue
            pending = self._pending.get(user_id)
            if pending is not None and not pending.done():
                self._dirty.add(user_id)  # read again once this read ends
                continue
            self._pending[user_id] = asyncio.get_running_loop().create_task(
                self._send_count(user_id)
            )

    def wake_all(self) -> None:
        """After the listener was away: every count may have changed."""
        self.wake(list(self.streams))

    async def _send_count(self, user_id: int) -> None:
        try:
            while True:
                self._dirty.discard(user_id)
                encoded = encode_count(await self.count(user_id))
                for subscriber in list(self.streams.get(user_id, ())):
                    subscriber.offer(encoded)
                if user_id not in self._dirty:
                    break
        except Exception:  # the database is away: the next change or reconnect tells again
            log.warning("live: inbox count for user %s failed", user_id, exc_info=True)
        finally:
            self._pending.pop(user_id, None)

    # --- Streams whose login session ended are closed, all checked at once ------------------
    def start_rechecks(self) -> None:
        if self.live_check is not None and self._rechecking is None:
            self._rechecking = asyncio.get_running_loop().create_task(self._recheck_forever())

    async def _recheck_forever(self) -> None:
        while True:
            await asyncio.sleep(self.recheck_seconds)
            await self.recheck()

    async def recheck(self) -> None:
        """Close the streams whose login session has ended (logged out, revoked, expired):
        one query for all of this worker's count streams."""
        if self.live_check is None:
            return
        checked = [
            s for found in self.streams.values() for s in found if s.auth_session_id is not None
        ]
        if not checked:
            return
        try:
            live = await self.live_check(sorted({s.auth_session_id for s in checked}))  # type: ignore[misc]
        except Exception:
            log.warning("live: inbox session check failed", exc_info=True)
            return
        for subscriber in checked:
            if subscriber.auth_session_id not in live:
                subscriber.offer(CLOSE)

    async def close(self) -> None:
        tasks = [*self._pending.values()]
        if self._rechecking is not None:
            tasks.append(self._rechecking)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


class InboxStream:
    """The body of one count stream: `chunks()` to send, `end()` when the client has gone."""

    __slots__ = (
        "auth_session_id",
        "broker",
        "ended",
        "heartbeat",
        "retry_ms",
        "subscriber",
        "user_id",
    )

    def __init__(
        self,
        broker: InboxBroker,
        user_id: int,
        auth_session_id: int | None,
        *,
        heartbeat: float = 15.0,
        retry_ms: int = 3000,
    ) -> None:
        self.broker, self.user_id, self.auth_session_id = broker, user_id, auth_session_id
        self.heartbeat, self.retry_ms = heartbeat, retry_ms
        self.subscriber: InboxSubscriber | None = None
        self.ended = False

    def end(self) -> None:
        self.ended = True
        if self.subscriber is not None:
            self.subscriber.offer(CLOSE)

    async def chunks(self) -> AsyncIterator[bytes]:
        """The count now, then each new count; ends when the login session ends (the periodic
        check) or the client leaves."""
        broker = self.broker
        # Subscribe first, then read: a change committed in between is either in this read or
        # wakes us after it, never neither.
        subscriber = self.subscriber = broker.subscribe(self.user_id, self.auth_session_id)
        if self.ended:
            subscriber.offer(CLOSE)
        try:
            try:
                first = encode_count(await broker.count(self.user_id))
            except Exception as error:
                log.warning("live: an inbox stream could not start (%s)", error)
                return
            yield f"retry: {self.retry_ms}\n".encode() + first
            while True:
                item = await subscriber.box.get(within=self.heartbeat)
                if item is TIMED_OUT:
                    yield b": ping\n\n"
                    continue
                if item is CLOSE:
                    return
                yield item  # type: ignore[misc]
        finally:
            broker.unsubscribe(subscriber)
            self.subscriber = None
