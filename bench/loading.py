"""Getting generated rows into a fresh database fast: COPY on PostgreSQL, executemany on SQLite."""

from __future__ import annotations

import asyncio
import os
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import aiosqlite
import asyncpg
from sqlalchemy.engine import make_url

from app.db import create_engine, migrations

# (table, columns, rows)
Rows = tuple[str, tuple[str, ...], list[tuple[Any, ...]]]

POSTGRES_PREFIX = "issues_bench"  # the only databases this loader drops
SQLITE_MAX_ISSUES = 100_000
# Tables whose secondary indexes are dropped during the load and built once at the end.
BIG_TABLES = ("issue", "comment", "activity", "issue_label", "watcher", "issue_search")
SERIAL_TABLES = ("user", "project", "workflow_status", "label", "issue", "comment", "activity")
SEARCH_RANGE = 25_000  # issues per search-document statement (they run side by side)


class Loader(ABC):
    """Copies rows as they come, then numbers the event log, sets the projects' counters,
    writes the search documents and leaves the planner statistics fresh."""

    def __init__(self) -> None:
        self.timings: dict[str, list[float]] = {}  # step -> [rows, seconds]

    def timed(self, step: str, rows: int, seconds: float) -> None:
        entry = self.timings.setdefault(step, [0, 0.0])
        entry[0] += rows
        entry[1] += seconds

    async def copy(self, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        started = time.perf_counter()
        await self._copy(table, columns, rows)
        self.timed(f"copy {table}", len(rows), time.perf_counter() - started)

    async def copy_all(self, chunk: Sequence[Rows]) -> None:
        for table, columns, rows in chunk:
            await self.copy(table, columns, rows)

    @abstractmethod
    async def _copy(
        self, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]
    ) -> None: ...

    @abstractmethod
    async def finish(self, issues_per_project: dict[int, int], *, history: bool) -> None: ...

    async def _step(self, step: str, work: Any) -> Any:
        started = time.perf_counter()
        result = await work
        # asyncpg answers "INSERT 0 <rows>", aiosqlite a cursor with its rowcount.
        if isinstance(result, str):
            rows = int(result.split()[-1]) if result[-1:].isdigit() else 0
        else:
            rows = max(0, getattr(result, "rowcount", 0))
        self.timed(step, rows, time.perf_counter() - started)
        return result

    def report(self, title: str, total: float) -> None:
        print(f"Loaded {title} in {total:.1f} s.\n")
        print("| step | rows | seconds |\n|---|---|---|")
        for step, (rows, seconds) in self.timings.items():
            print(f"| {step} | {int(rows):,} | {seconds:.1f} |")
        print(f"| total | | {total:.1f} |")


# The event log is numbered per project in time order, as commits would have numbered it.
NUMBER_EVENTS = """
INSERT INTO activity (id, project_id, seq, actor_id, issue_id, kind, payload, created_at)
SELECT id, project_id, row_number() OVER (PARTITION BY project_id ORDER BY created_at, id),
       actor_id, issue_id, kind, payload, created_at
FROM activity_load
"""
EVENT_COUNTERS = """
UPDATE project SET last_event_seq = (SELECT count(*) FROM activity WHERE project_id = project.id)
"""


# --- PostgreSQL -------------------------------------------------------------------------------


class PostgresLoader(Loader):
    def __init__(self, connection: asyncpg.Connection, pool: asyncpg.Pool) -> None:
        super().__init__()
        self.connection, self.pool = connection, pool
        self.indexes: list[tuple[str, str, str]] = []  # (table, name, definition)

    async def prepare(self) -> None:
        # Foreign keys are checked by construction, not row by row (triggers off for this
        # session); secondary indexes are built once at the end rather than kept up per row.
        await self.connection.execute("SET session_replication_role = replica")
        rows = await self.connection.fetch(
            "SELECT tablename, indexname, indexdef FROM pg_indexes i WHERE schemaname = 'public' "
            "AND tablename = ANY($1::text[]) "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)",
            list(BIG_TABLES),
        )
        self.indexes = [(row["tablename"], row["indexname"], row["indexdef"]) for row in rows]
        for _, name, _ in self.indexes:
            await self.connection.execute(f'DROP INDEX "{name}"')
        await self.connection.execute(
            "CREATE UNLOGGED TABLE activity_load (id bigint, project_id integer, "
            "actor_id integer, issue_id integer, kind varchar(40), payload jsonb, "
            "created_at timestamptz)"
        )

    async def _copy(
        self, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]
    ) -> None:
        await self.connection.copy_records_to_table(table, columns=columns, records=rows)

    async def _side_by_side(self, statements: Sequence[tuple[str, tuple[Any, ...]]]) -> str:
        """Run the statements on the pool's connections, one per core, and sum their rows."""
        answers = await asyncio.gather(*(self.pool.execute(sql, *args) for sql, args in statements))
        rows = sum(int(answer.split()[-1]) for answer in answers if answer[-1:].isdigit())
        return f"DONE {rows}"

    async def finish(self, issues_per_project: dict[int, int], *, history: bool) -> None:
        db = self.connection
        await db.executemany(
            "UPDATE project SET last_issue_number = $2 WHERE id = $1",
            list(issues_per_project.items()),
        )
        if history:
            await self._step("number the event log (seq)", db.execute(NUMBER_EVENTS))
            await db.execute(EVENT_COUNTERS)
        await db.execute("DROP TABLE activity_load")
        for table in SERIAL_TABLES:
            await db.execute(
                f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), "  # noqa: S608 (constant names)
                f'coalesce(max(id), 0) + 1, false) FROM "{table}"'
            )
        # Indexes the search documents are made with first; the GIN index after them.
        early = [(d, ()) for t, _, d in self.indexes if t != "issue_search"]
        late = [(d, ()) for t, _, d in self.indexes if t == "issue_search"]
        await self._step("build indexes", self._side_by_side(early))
        top = await db.fetchval("SELECT coalesce(max(id), 0) FROM issue")
        ranges = [(low, low + SEARCH_RANGE - 1) for low in range(1, top + 1, SEARCH_RANGE)]
        # The same document refresh_search_document writes, made by the server in bulk.
        documents = (
            "INSERT INTO issue_search (issue_id, document) "
            "SELECT issue.id, to_tsvector('english', issue.title || ' ' || issue.description "
            "|| ' ' || coalesce((SELECT string_agg(comment.body, ' ' ORDER BY comment.id) "
            "FROM comment WHERE comment.issue_id = issue.id AND comment.deleted_at IS NULL), '')) "
            "FROM issue WHERE issue.id BETWEEN $1 AND $2"
        )
        await self._step(
            "search documents (to_tsvector)",
            self._side_by_side([(documents, bounds) for bounds in ranges]),
        )
        await self._step("build search index (GIN)", self._side_by_side(late))
        tables = await db.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
        )
        await self._step(
            "VACUUM ANALYZE",
            self._side_by_side([(f'VACUUM ANALYZE "{row[0]}"', ()) for row in tables]),
        )


async def recreate_postgres_database(url: str) -> None:
    parsed = make_url(url)
    if not (parsed.database or "").startswith(POSTGRES_PREFIX):
        raise SystemExit(
            f"refusing to drop {parsed.database!r}: its name must start with {POSTGRES_PREFIX}"
        )
    connection = await asyncpg.connect(**_connect_arguments(url, database="postgres"))
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{parsed.database}"')
    finally:
        await connection.close()


def _connect_arguments(url: str, database: str | None = None) -> dict[str, Any]:
    parsed = make_url(url)
    return {
        "host": parsed.host,
        "port": parsed.port or 5432,
        "user": parsed.username,
        "password": parsed.password,
        "database": database or parsed.database,
    }


# --- SQLite -----------------------------------------------------------------------------------


def _sqlite_value(value: Any) -> Any:
    """As SQLAlchemy stores it: UTC datetimes as text without an offset, booleans as 0/1."""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, bool):
        return int(value)
    return value


class SqliteLoader(Loader):
    def __init__(self, connection: aiosqlite.Connection) -> None:
        super().__init__()
        self.connection = connection

    async def prepare(self) -> None:
        db = self.connection
        await db.execute("PRAGMA synchronous = OFF")
        await db.execute(
            "CREATE TEMP TABLE activity_load (id INTEGER, project_id INTEGER, actor_id INTEGER, "
            "issue_id INTEGER, kind VARCHAR(40), payload JSON, created_at DATETIME)"
        )
        await db.execute("BEGIN")

    async def _copy(
        self, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]
    ) -> None:
        names = ", ".join(f'"{column}"' for column in columns)
        marks = ", ".join("?" for _ in columns)
        await self.connection.executemany(
            f'INSERT INTO "{table}" ({names}) VALUES ({marks})',  # noqa: S608 (our own names)
            [tuple(_sqlite_value(value) for value in row) for row in rows],
        )

    async def finish(self, issues_per_project: dict[int, int], *, history: bool) -> None:
        db = self.connection
        await db.executemany(
            "UPDATE project SET last_issue_number = ? WHERE id = ?",
            [(count, project_id) for project_id, count in issues_per_project.items()],
        )
        if history:
            await self._step("number the event log (seq)", db.execute(NUMBER_EVENTS))
            await db.execute(EVENT_COUNTERS)
        # The triggers on issue_search fill the FTS5 index as the documents go in.
        await self._step(
            "search documents (FTS5)",
            db.execute(
                "INSERT INTO issue_search (issue_id, document) "
                "SELECT issue.id, issue.title || ' ' || issue.description || coalesce(' ' || "
                "(SELECT group_concat(body, ' ') FROM comment WHERE comment.issue_id = issue.id "
                "AND comment.deleted_at IS NULL), '') FROM issue"
            ),
        )
        await db.commit()
        await self._step(
            "FTS5 optimize", db.execute("INSERT INTO issue_fts(issue_fts) VALUES ('optimize')")
        )
        await db.commit()
        await self._step("ANALYZE", db.execute("ANALYZE"))
        await db.commit()


# --- Opening ----------------------------------------------------------------------------------


@asynccontextmanager
async def open_loader(url: str, issues: int) -> AsyncIterator[Loader]:
    """A loader on a database made empty and migrated for it (dropped first: PostgreSQL
    databases named issues_bench* only, SQLite files of up to SQLITE_MAX_ISSUES issues)."""
    started = time.perf_counter()
    if url.startswith("postgresql"):
        await recreate_postgres_database(url)
    elif url.startswith("sqlite"):
        if issues > SQLITE_MAX_ISSUES:
            raise SystemExit(
                f"SQLite takes up to {SQLITE_MAX_ISSUES:,} issues here; use PostgreSQL"
            )
        path = Path(make_url(url).database or "")
        if not path.name:
            raise SystemExit("give SQLite a file: sqlite:///path/to/bench.db")
        for leftover in (
            path,
            path.with_name(path.name + "-wal"),
            path.with_name(path.name + "-shm"),
        ):
            leftover.unlink(missing_ok=True)
    else:
        raise SystemExit("bench.data loads PostgreSQL or SQLite URLs")
    engine = create_engine(url)
    await migrations.upgrade(engine)
    await engine.dispose()
    migrated = time.perf_counter() - started

    if url.startswith("sqlite"):
        async with aiosqlite.connect(make_url(url).database or "", isolation_level=None) as db:
            loader: Loader = SqliteLoader(db)
            loader.timed("create and migrate", 0, migrated)
            await loader.prepare()
            yield loader
        return
    arguments = _connect_arguments(url)
    connection = await asyncpg.connect(**arguments)

    async def settings(side: asyncpg.Connection) -> None:
        await side.execute("SET maintenance_work_mem = '1GB'")

    pool = await asyncpg.create_pool(
        **arguments, min_size=1, max_size=os.cpu_count() or 2, init=settings
    )
    try:
        postgres = PostgresLoader(connection, pool)
        postgres.timed("create and migrate", 0, migrated)
        await postgres.prepare()
        yield postgres
    finally:
        await pool.close()
        await connection.close()
