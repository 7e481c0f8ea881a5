"""Each worker's PostgreSQL LISTEN connection: new activity anywhere wakes this worker's broker."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

import asyncpg
from sqlalchemy.engine import make_url

from app.live.broker import Broker, encode_state
from app.live.inbox import INBOX_CHANNEL, InboxBroker
from app.services import admin
from app.services.importing.jobs import PROGRESS_CHANNEL

log = logging.getLogger("issues.live")

CHANNEL = "issues_activity"
PRESENCE_CHANNEL = "issues_presence"
# A user id whose account was closed (services.admin sends it in its commit): end their streams.
ACCOUNTS_CHANNEL = admin.ACCOUNTS_CHANNEL
HEARTBEAT_SECONDS = 10.0
RECONNECT_SECONDS = 1.0


def asyncpg_dsn(sqlalchemy_url: str) -> str:
    return (
        make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(hide_password=False)
    )


class PostgresListener:
    """A dedicated asyncpg connection (not from the pool: LISTEN belongs to one connection).
    It checks itself every few seconds; when the connection dies it reconnects and wakes every
    feed, so the brokers catch up from the log and no event is lost."""

    def __init__(self, database_url: str, broker: Broker, inbox: InboxBroker | None = None) -> None:
        self.dsn = asyncpg_dsn(database_url)
        self.broker = broker
        self.inbox = inbox
        self.connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._connection: asyncpg.Connection | None = None
        # One connection serves one query at a time: the heartbeat and announcements take turns.
        self._using = asyncio.Lock()
        broker.presence.announce = self.announce_presence

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="live-listener")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.connected.wait(), 5)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def announce_presence(self, payload: str) -> None:
        """Tell every worker who is looking at a project here (dropped while disconnected:
        the next periodic announcement repeats it)."""
        connection = self._connection
        if connection is None:
            return
        try:
            async with self._using:
                await connection.execute("SELECT pg_notify($1, $2)", PRESENCE_CHANNEL, payload)
        except Exception as error:
            log.info("live: presence announcement not sent (%s)", error)

    def _on_presence(self, connection: object, pid: int, channel: str, payload: str) -> None:
        self.broker.presence.heard(payload)

    def _on_account_closed(self, connection: object, pid: int, channel: str, payload: str) -> None:
        if payload.isdigit():
            self.broker.close_streams_of(int(payload))

    def _on_notify(self, connection: object, pid: int, channel: str, payload: str) -> None:
        project_id, _, _ = payload.partition(":")
        if project_id.isdigit():
            self.broker.wake(int(project_id))

    def _on_inbox(self, connection: object, pid: int, channel: str, payload: str) -> None:
        if self.inbox is not None:
            self.inbox.wake(int(part) for part in payload.split(",") if part.isdigit())

    def _on_import_progress(self, connection: object, pid: int, channel: str, payload: str) -> None:
        """An import's progress, committed by whichever worker runs it: to this worker's
        streams of its project (decision 0029)."""
        try:
            state = json.loads(payload)
            project_id = int(state.pop("project_id"))
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("live: unreadable import progress %r", payload[:200])
            return
        self.broker.tell(project_id, encode_state("import", state))

    async def _run(self) -> None:
        while True:
            connection = None
            try:
                connection = await asyncpg.connect(self.dsn, timeout=5)
                # asyncpg says at once when the server ends the connection (a restart): the
                # heartbeat alone notices up to HEARTBEAT_SECONDS later, and every NOTIFY sent
                # meanwhile goes nowhere, so live events would wait that long.
                lost = asyncio.Event()
                connection.add_termination_listener(lambda _connection, lost=lost: lost.set())
                await connection.add_listener(CHANNEL, self._on_notify)
                await connection.add_listener(PRESENCE_CHANNEL, self._on_presence)
                await connection.add_listener(ACCOUNTS_CHANNEL, self._on_account_closed)
                await connection.add_listener(INBOX_CHANNEL, self._on_inbox)
                await connection.add_listener(PROGRESS_CHANNEL, self._on_import_progress)
                self._connection = connection
                self.connected.set()
                # Whatever was committed while we were away is in the log: catch up.
                for project_id in list(self.broker.feeds):
                    self.broker.wake(project_id)
                if self.inbox is not None:
                    self.inbox.wake_all()  # counts are state: read them again
                while True:
                    await self.broker.presence.announce_all()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(lost.wait(), HEARTBEAT_SECONDS)
                    if lost.is_set():
                        raise ConnectionError("the server closed the connection")
                    async with self._using:
                        await asyncio.wait_for(connection.fetchval("SELECT 1"), HEARTBEAT_SECONDS)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # a lost connection: try again shortly
                log.warning("live: listener lost its connection (%s); reconnecting", error)
            finally:
                self.connected.clear()
                self._connection = None
                if connection is not None:
                    with contextlib.suppress(Exception):
                        await connection.close(timeout=2)
            await asyncio.sleep(RECONNECT_SECONDS)
