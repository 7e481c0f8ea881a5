"""Cost of the search box on a realistic PostgreSQL tracker: bulk load, then timed searches.

Run with `.venv/bin/python -m bench.search --database-url postgresql://postgres@127.0.0.1/issues_bench_search
--issues 100000`. The database is dropped and created again (give it one of its own), migrated,
and filled with COPY: projects, users and memberships, issues with words drawn from a skewed
vocabulary, about one comment per issue, labels and search documents. Each search then runs in a
fresh session as a member of many projects; the table gives milliseconds, and EXPLAIN ANALYZE of
the slowest search follows it.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from app import schema
from app.config import normalise_database_url
from app.db import create_engine
from app.models import Project, User
from app.models.issue import DEFAULT_WORKFLOW, POSITION_STEP
from app.services import search

PROJECTS = 50
PUBLIC_PROJECTS = 10
USERS = 500
VIEWER_ID = 1
VIEWER_PROJECTS = 30  # the viewer is a member of this many (private and public) projects
LABELS = ("bug", "feature", "ui", "backend", "docs", "wontfix", "performance", "security")
PRIORITIES = ("urgent", "high", "medium", "low", "none")
TYPES = ("bug", "feature", "task")
NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
PROJECT_COLUMNS = (
    *("id", "key", "name", "description", "is_public"),
    *("last_issue_number", "last_event_seq", "created_at"),
)
ISSUE_COLUMNS = (
    *("id", "project_id", "number", "title", "description", "status_id", "priority", "type"),
    *("reporter_id", "assignee_id", "position", "version", "created_at", "updated_at"),
)

# Common words of a software tracker first; a long tail of made-up words follows. Words are
# drawn with Zipf-like weights, so a few are everywhere and most are rare.
COMMON_TEXT = """
login page error crash slow timeout user button form save load fails when after before the
with on in of to and for from should not cannot broken update delete create list search filter
sort export import email notification settings account password reset session cookie token api
endpoint request response server client database query index migration cache memory cpu disk
upload download file image preview render layout mobile desktop browser safari chrome firefox
header footer sidebar menu modal dialog tooltip dropdown checkbox input field validation message
warning report dashboard chart graph table column row cell pagination scroll keyboard shortcut
theme dark light color font icon translation language locale date time zone calendar schedule
webhook integration slack github deploy build release version test flaky retry queue worker job
"""
COMMON_WORDS = COMMON_TEXT.split()
SYLLABLE_TEXT = "ka lo mi ne ru sa te vi zo pa qu re ti xo ya be do fu gi ha"
SYLLABLES = SYLLABLE_TEXT.split()
COMMON_WORD, TYPICAL_WORD, RARE_WORD = "login", "webhook", "zokaqu"


def vocabulary(rng: random.Random) -> tuple[list[str], list[float]]:
    made_up = {
        "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))) for _ in range(4000)
    }
    words = COMMON_WORDS + sorted(made_up - set(COMMON_WORDS))
    # With this offset the commonest word is in about a third of the issues, a middling one of
    # the common list in about one in ten, a made-up one in a handful.
    return words, [1 / (rank + 50) for rank in range(len(words))]


class Text:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.words, weights = vocabulary(rng)
        self.cumulative = list(_accumulate(weights))

    def words_of(self, low: int, high: int) -> str:
        count = self.rng.randint(low, high)
        return " ".join(self.rng.choices(self.words, cum_weights=self.cumulative, k=count))


def _accumulate(values: list[float]) -> list[float]:
    total, out = 0.0, []
    for value in values:
        total += value
        out.append(total)
    return out


# --- Loading ----------------------------------------------------------------------------------


async def recreate_database(url: str) -> None:
    parsed = make_url(url)
    connection = await asyncpg.connect(
        host=parsed.host,
        port=parsed.port or 5432,
        user=parsed.username,
        password=parsed.password,
        database="postgres",
    )
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{parsed.database}"')
    finally:
        await connection.close()


async def load(engine: AsyncEngine, issue_count: int, seed: int) -> None:
    """Fill the migrated database. User 1 is the viewer the searches run as."""
    rng = random.Random(seed)
    text = Text(rng)
    async with engine.begin() as connection:
        raw = (await connection.get_raw_connection()).driver_connection
        assert isinstance(raw, asyncpg.Connection)

        async def copy(table: str, columns: tuple[str, ...], records: list[tuple]) -> None:
            await raw.copy_records_to_table(table, columns=columns, records=records)

        await copy(
            "user",
            ("id", "email", "display_name", "handle", "is_admin", "notify_by_email", "created_at"),
            [
                (n, f"user{n}@example.com", f"User {n}", f"user{n}", False, True, NOW)
                for n in range(1, USERS + 1)
            ],
        )
        await copy(
            "project",
            PROJECT_COLUMNS,
            [
                (n, f"P{n}", f"Project {n}", "", n <= PUBLIC_PROJECTS, 0, 0, NOW)
                for n in range(1, PROJECTS + 1)
            ],
        )
        members: dict[int, list[int]] = {}
        for project_id in range(1, PROJECTS + 1):
            people = set(rng.sample(range(2, USERS + 1), rng.randint(10, 40)))
            if project_id <= VIEWER_PROJECTS:
                people.add(VIEWER_ID)
            members[project_id] = sorted(people)
        await copy(
            "membership",
            ("project_id", "user_id", "role", "created_at"),
            [(p, u, "member", NOW) for p, people in members.items() for u in people],
        )
        statuses: dict[int, list[tuple[int, str]]] = {}
        status_rows = []
        for project_id in range(1, PROJECTS + 1):
            for position, (name, category) in enumerate(DEFAULT_WORKFLOW):
                status_id = len(status_rows) + 1
                status_rows.append((status_id, project_id, name, category.value, position))
                statuses.setdefault(project_id, []).append((status_id, category.value))
        await copy(
            "workflow_status", ("id", "project_id", "name", "category", "position"), status_rows
        )
        labels = {
            project_id: [(project_id - 1) * len(LABELS) + n + 1 for n in range(len(LABELS))]
            for project_id in range(1, PROJECTS + 1)
        }
        await copy(
            "label",
            ("id", "project_id", "name", "color"),
            [
                (label_id, project_id, LABELS[n], "#6b7280")
                for project_id, ids in labels.items()
                for n, label_id in enumerate(ids)
            ],
        )

        issues, issue_labels, comments = [], [], []
        numbers = dict.fromkeys(range(1, PROJECTS + 1), 0)
        for issue_id in range(1, issue_count + 1):
            project_id = rng.randint(1, PROJECTS)
            numbers[project_id] += 1
            people = members[project_id]
            # Half the issues are done, as in a tracker that has run for a while.
            status_id, _ = rng.choice(statuses[project_id][:4] * 1 + statuses[project_id][4:] * 4)
            created = NOW - timedelta(seconds=rng.randint(0, 2 * 365 * 86400))
            updated = created + timedelta(
                seconds=rng.randint(0, int((NOW - created).total_seconds()))
            )
            assignee = rng.choice(people) if rng.random() < 0.7 else None
            issues.append(
                (
                    issue_id,
                    project_id,
                    numbers[project_id],
                    text.words_of(3, 9).capitalize(),
                    text.words_of(10, 80),
                    status_id,
                    rng.choice(PRIORITIES),
                    rng.choice(TYPES),
                    rng.choice(people),
                    assignee,
                    numbers[project_id] * POSITION_STEP,
                    1,
                    created,
                    updated,
                )
            )
            for label_id in rng.sample(labels[project_id], rng.choice((0, 0, 1, 1, 1, 2, 3))):
                issue_labels.append((issue_id, label_id))
            for _ in range(rng.choice((0, 0, 1, 1, 2, 2))):
                comments.append(
                    (
                        len(comments) + 1,
                        issue_id,
                        rng.choice(people),
                        text.words_of(5, 40),
                        updated,
                    )
                )
        await copy(
            "issue",
            ISSUE_COLUMNS,
            issues,
        )
        await copy("issue_label", ("issue_id", "label_id"), issue_labels)
        await copy("comment", ("id", "issue_id", "author_id", "body", "created_at"), comments)
        await raw.executemany(
            "UPDATE project SET last_issue_number = $2 WHERE id = $1", list(numbers.items())
        )
        for table in ("user", "project", "workflow_status", "label", "issue", "comment"):
            await raw.execute(
                f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), "  # noqa: S608 (constant names)
                f'(SELECT max(id) FROM "{table}"))'
            )
        # The same document refresh_search_document writes, made in one statement.
        await raw.execute(
            "INSERT INTO issue_search (issue_id, document) "
            "SELECT issue.id, to_tsvector('english', issue.title || ' ' || issue.description "
            "|| ' ' || coalesce(string_agg(comment.body, ' ' ORDER BY comment.id), '')) "
            "FROM issue LEFT JOIN comment "
            "ON comment.issue_id = issue.id AND comment.deleted_at IS NULL GROUP BY issue.id"
        )
    async with engine.connect() as connection:
        raw = (await connection.get_raw_connection()).driver_connection
        await raw.execute("VACUUM ANALYZE")


# --- Timing -----------------------------------------------------------------------------------


def row(name: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"| {name} | {len(samples)} | {statistics.median(samples):.1f} | {p95:.1f} |"


# The keyset indexes this benchmark found missing, now made by the migrations. Without
# --suggested-indexes they are dropped before timing, to show what they are worth.
SUGGESTED_INDEXES = (
    "CREATE INDEX ix_issue_updated_at_id ON issue (updated_at, id)",
    "CREATE INDEX ix_issue_created_at_id ON issue (created_at, id)",
)


async def main(arguments: argparse.Namespace) -> None:
    url = normalise_database_url(arguments.database_url)
    if not url.startswith("postgresql"):
        raise SystemExit("bench.search measures PostgreSQL: give a postgresql:// URL")
    engine = create_engine(url)
    load_note = "data kept from the last run"
    if not arguments.keep_data:
        await recreate_database(url)
        await schema.upgrade(engine)
        started = time.perf_counter()
        await load(engine, arguments.issues, arguments.seed)
        load_note = f"load took {time.perf_counter() - started:.1f} s"
    async with engine.begin() as connection:
        raw = (await connection.get_raw_connection()).driver_connection
        for statement in SUGGESTED_INDEXES:
            name = statement.split()[2]
            await raw.execute(f"DROP INDEX IF EXISTS {name}")
            if arguments.suggested_indexes:
                await raw.execute(statement)
        await raw.execute("ANALYZE issue")

    # The statements the searches send, to EXPLAIN the slowest one afterwards.
    sent: list[tuple[str, Any]] = []

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def remember(connection: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().startswith("SELECT issue.id"):
            sent.append((statement, parameters))

    sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
    async with sessionmaker() as session:
        viewer = await session.get_one(User, VIEWER_ID)
        session.expunge(viewer)
        one_project = await session.get_one(Project, 1)
        visible = await search.count_issues(session, viewer, "")
        share = {
            word: await search.count_issues(session, viewer, word) / visible
            for word in (COMMON_WORD, TYPICAL_WORD, RARE_WORD)
        }

    def searching(
        query: str, pages: int = 1, project: Project | None = None
    ) -> Callable[[], Awaitable[None]]:
        async def step() -> None:
            async with sessionmaker() as session:
                after = None
                for _ in range(pages):
                    page = await search.search_issues(
                        session, viewer, query, after=after, project=project
                    )
                    after = page.next_cursor

        return step

    def counting(query: str) -> Callable[[], Awaitable[None]]:
        async def step() -> None:
            async with sessionmaker() as session:
                await search.count_issues(session, viewer, query)

        return step

    def in_share(word: str) -> str:
        return f"`{word}` (in {share[word]:.0%} of issues)"

    cases = [
        (f"free word, common {in_share(COMMON_WORD)}", searching(COMMON_WORD)),
        (f"free word, typical {in_share(TYPICAL_WORD)}", searching(TYPICAL_WORD)),
        (f"free word, rare {in_share(RARE_WORD)}", searching(RARE_WORD)),
        (
            f"`is:open label:bug assignee:me {TYPICAL_WORD}`",
            searching(f"is:open label:bug assignee:me {TYPICAL_WORD}"),
        ),
        ("`is:open` (all projects)", searching("is:open")),
        ("`is:open`, one project's list", searching("is:open", project=one_project)),
        ("`sort:updated-desc`, pages 1 to 5 by cursor", searching("sort:updated-desc", 5)),
        ("`sort:created-asc is:open`", searching("sort:created-asc is:open")),
        ("`sort:priority-desc is:open`", searching("sort:priority-desc is:open")),
        (f"count of `{COMMON_WORD}`", counting(COMMON_WORD)),
        ("count of `is:open`", counting("is:open")),
    ]
    rows, slowest = [], (0.0, "", None)
    for name, step in cases:
        await step()  # warm the caches and the prepared statements
        samples = []
        for _ in range(arguments.runs):
            sent.clear()
            started = time.perf_counter()
            await step()
            samples.append((time.perf_counter() - started) * 1000)
        rows.append(row(name, samples))
        if sent and statistics.median(samples) > slowest[0]:
            slowest = (statistics.median(samples), name, sent[-1])

    indexes = "with the suggested indexes" if arguments.suggested_indexes else "schema as migrated"
    print(f"Search on PostgreSQL: {visible:,} issues visible to the viewer (member of")
    print(f"{VIEWER_PROJECTS} of {PROJECTS} projects, {PUBLIC_PROJECTS} public), {indexes};")
    print(f"{load_note}. Milliseconds per search, each in a fresh session, issues loaded.\n")
    print("| search | runs | median | p95 |\n|---|---|---|---|")
    print("\n".join(rows))
    if slowest[2] is not None:
        statement, parameters = slowest[2]
        async with engine.connect() as connection:
            raw = (await connection.get_raw_connection()).driver_connection
            plan = await raw.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", *parameters)
        print(f"\nEXPLAIN ANALYZE of the slowest, {slowest[1]} (its last page):\n")
        print("\n".join(record[0] for record in plan))
    await engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        default="postgresql://postgres@127.0.0.1/issues_bench_search",
        help="a PostgreSQL database of its own: it is dropped and created again",
    )
    parser.add_argument("--issues", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument(
        "--keep-data", action="store_true", help="search the data of the last run, not reloaded"
    )
    parser.add_argument(
        "--suggested-indexes",
        action="store_true",
        help="keep the keyset indexes (in the schema since they were found); else drop them",
    )
    asyncio.run(main(parser.parse_args()))
