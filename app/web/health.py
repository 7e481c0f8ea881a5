"""Readiness (what /readyz reports) and the refusal to serve a database behind the code."""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from quart import Quart
from sqlalchemy import text

from app.db import Database
from app.db.migrations import SchemaBehind, schema_state

log = logging.getLogger("issues.health")

STARTUP_CHECK_SECONDS = 5.0
READY_CHECK_SECONDS = 3.0


class Readiness:
    """Whether this worker should be sent traffic: the database answers, its schema is the one
    the code needs, and (on PostgreSQL) the live listener is connected. Cheap: one trivial
    query, and the schema is read only until it has once been found current."""

    def __init__(self, database: Database) -> None:
        self.database = database
        # Migrations only move forward: once current (or ahead), it stays so for this process.
        self.schema_ok = False

    async def check_schema_at_start(self) -> None:
        """Refuse to start on a schema behind the code. An unreachable database is no refusal:
        the worker starts, /readyz says 503, and it becomes ready once the database answers."""
        try:
            async with asyncio.timeout(STARTUP_CHECK_SECONDS):
                state = await schema_state(self.database.engine)
        except Exception as error:  # an outage at start must not keep a worker down for good
            log.warning("cannot read the database schema at start (%s); /readyz will tell", error)
            return
        if state.behind:
            log.critical("refusing to serve: %s", state.describe())
            raise SchemaBehind(state.describe())
        if not state.current:
            log.warning("the database schema is ahead of this code (%s)", ", ".join(state.database))
        self.schema_ok = True
        await self.warn_of_a_small_connection_limit()

    async def warn_of_a_small_connection_limit(self) -> None:
        """Say so at start when the workers' pools could ask PostgreSQL for more connections
        than it allows (each worker: its pool, its overflow and its live listener)."""
        engine = self.database.engine
        if engine.dialect.name != "postgresql":
            return
        workers = int(os.environ.get("WEB_CONCURRENCY") or os.cpu_count() or 1)
        pool = engine.pool
        per_worker = pool.size() + pool._max_overflow + 1  # type: ignore[attr-defined]
        try:
            async with asyncio.timeout(STARTUP_CHECK_SECONDS), engine.connect() as connection:
                allowed = int((await connection.execute(text("SHOW max_connections"))).scalar())
        except Exception:  # only advice: no answer, no advice
            return
        if workers * per_worker > allowed - 3:  # PostgreSQL keeps 3 for superusers
            log.warning(
                "%d workers may open %d connections each (DATABASE_POOL_SIZE + "
                "DATABASE_MAX_OVERFLOW + 1), more than PostgreSQL's max_connections (%d) allows: "
                "lower them or raise max_connections (docs/deploy.md)",
                workers,
                per_worker,
                allowed,
            )

    async def report(self, listener: Any | None) -> dict[str, str]:
        """`listener`: the worker's PostgresListener (None on SQLite, which needs none)."""
        report = {"database": "ok", "schema": "current", "live": "not used"}
        try:
            async with asyncio.timeout(READY_CHECK_SECONDS):
                if self.schema_ok:
                    async with self.database.engine.connect() as connection:
                        await connection.execute(text("SELECT 1"))
                else:
                    state = await schema_state(self.database.engine)
                    if state.behind:
                        report["schema"] = "behind: run alembic upgrade head"
                    else:
                        self.schema_ok = True
        except Exception as error:  # any failure to reach the database is "unreachable"
            log.warning("readiness: the database does not answer (%s)", error)
            report["database"], report["schema"] = "unreachable", "unknown"
        if listener is not None:
            report["live"] = "connected" if listener.connected.is_set() else "disconnected"
        ready = (
            report["database"] == "ok"
            and report["schema"] == "current"
            and report["live"] in ("connected", "not used")
        )
        return {"status": "ready" if ready else "unavailable", **report}


def init_app(app: Quart) -> None:
    """Right after db.init_app, so that the check runs before the worker's other start-up work
    (the live listener, the mail sender)."""
    readiness = Readiness(app.extensions["database"])
    app.extensions["readiness"] = readiness
    app.before_serving(readiness.check_schema_at_start)
