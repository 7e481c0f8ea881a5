"""The live layer: project events fanned out to open pages over server-sent events.

A commit that writes activity rows makes them reach every worker's broker: on PostgreSQL by a
NOTIFY sent in that very transaction (delivered at commit) to each worker's LISTEN connection,
on SQLite (one process) by an after-commit hook. Each broker reads the new rows once, renders
them once, and queues them to its own subscribers (decision 0007).
"""

from __future__ import annotations

from quart import Quart

from app.live.broker import Broker
from app.live.cards import CardCache
from app.live.listener import PostgresListener
from app.services import access, login_sessions

__all__ = ["Broker", "init_app"]


def init_app(app: Quart) -> None:
    database = app.extensions["database"]
    # One memory of rendered cards serves the board pages and the live events.
    cards = CardCache(app.jinja_env)
    app.extensions["cards"] = cards

    async def may_still_read(project_id: int, readers: list[tuple[int, int]]) -> set[int]:
        """Of these (login session, user) pairs, the sessions still live whose user may read
        the project: the periodic check of every open stream, two queries per project."""
        async with database.sessionmaker() as session:
            live = await login_sessions.live_sessions(
                session, app.extensions["account_settings"], (sid for sid, _ in readers)
            )
            allowed_users = await access.readers_among(
                session, project_id, {user.id for user in live.values()}
            )
        return {
            sid
            for sid, user_id in readers
            if sid in live and live[sid].id == user_id and user_id in allowed_users
        }

    broker = Broker(
        database.sessionmaker,
        cards,
        queue_size=app.config["SSE_QUEUE_SIZE"],
        access_check=may_still_read,
        recheck_seconds=app.config["SSE_RECHECK_SECONDS"],
    )
    app.extensions["broker"] = broker

    @app.before_serving
    async def start_rechecks() -> None:
        broker.start_rechecks()

    @app.after_serving
    async def close_broker() -> None:
        await broker.close()

    if database.backend == "postgresql":
        listener = PostgresListener(database.url, broker)
        app.extensions["live_listener"] = listener

        @app.before_serving
        async def start_listening() -> None:
            await listener.start()

        @app.after_serving
        async def stop_listening() -> None:
            await listener.stop()
    else:
        # One process: the commit itself tells the broker.
        database.sessionmaker.kw.setdefault("info", {})["issues.on_activity"] = broker.wake
