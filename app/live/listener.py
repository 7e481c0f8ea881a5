"""Each worker's PostgreSQL LISTEN connection: new activity anywhere wakes this worker's broker."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg
from sqlalchemy.engine import make_url

from app.live.broker import Broker

log = logging.getLogger("issues.live")

CHANNEL = "issues_activity"
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

    def __init__(self, database_url: str, broker: Broker) -> None:
        self.dsn = asyncpg_dsn(database_url)
        self.broker = broker
        self.connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="live-listener")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.connected.wait(), 5)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _on_notify(self, connection: object, pid: int, channel: str, payload: str) -> None:
        project_id, _, _ = payload.partition(":")
        if project_id.isdigit():
            self.broker.wake(int(project_id))

    async def _run(self) -> None:
        while True:
            connection = None
            try:
                connection = await asyncpg.connect(self.dsn, timeout=5)
                await connection.add_listener(CHANNEL, self._on_notify)
                self.connected.set()
                # Whatever was committed while we were away is in the log: catch up.
                for project_id in list(self.broker.feeds):
                    self.broker.wake(project_id)
                while True:
                    await asyncio.sleep(HEARTBEAT_SECONDS)
                    await asyncio.wait_for(connection.fetchval("SELECT 1"), HEARTBEAT_SECONDS)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # a lost connection: try again shortly
                log.warning("live: listener lost its connection (%s); reconnecting", error)
            finally:
                self.connected.clear()
                if connection is not None:
                    with contextlib.suppress(Exception):
                        await connection.close(timeout=2)
            await asyncio.sleep(RECONNECT_SECONDS)
