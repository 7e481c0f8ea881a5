"""Cost of the search box on a realistic PostgreSQL tracker: bulk load, then timed searches.

Run with `.venv/bin/python -m bench.search --database-url postgresql://postgres@127.0.0.1/issues_bench_search
--issues 100000`. The database is dropped and created again (its name must start with
issues_bench), migrated, and filled by bench.data's generator and COPY loader in this
benchmark's shape (search_shape): projects, users and memberships, issues with words drawn
from a skewed vocabulary, about one comment per issue, labels and search documents. Each search
then runs in a fresh session as a member of many projects; the table gives milliseconds, and
EXPLAIN ANALYZE of the slowest search follows it.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import async_sessionmaker

from app.config import normalise_database_url
from app.db import create_engine
from app.models import Project, User
from app.services import search
from bench import data
from bench.loading import open_loader

PROJECTS = 50
PUBLIC_PROJECTS = 10
VIEWER_ID = 1
VIEWER_PROJECTS = 30  # the viewer is a member of this many (private and public) projects
COMMON_WORD, TYPICAL_WORD, RARE_WORD = "login", "webhook", "zokaqu"


def search_shape(issues: int) -> data.Shape:
    """bench.data's generator, shaped as this benchmark has always measured: 50 projects
    (every fifth public), 500 users, 10 to 40 members each, issues spread evenly, about one
    comment per issue, no event log; user 1 belongs to the first 30 projects."""
    return data.Shape(
        issues=issues,
        projects=PROJECTS,
        public_every=PROJECTS // PUBLIC_PROJECTS,
        users=500,
        bench_users=1,
        wide_users=1,
        wide_projects=VIEWER_PROJECTS,
        narrow_projects=0,
        members=(10, 40),
        board_issues=0,
        skew=0.0,
        comments=(0, 0, 1, 1, 2, 2),
        twenty_comments_every=0,
        history=False,
    )


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
    load_note = "data kept from the last run"
    if not arguments.keep_data:
        started = time.perf_counter()
        async with open_loader(url, arguments.issues) as loader:
            await data.load(loader, search_shape(arguments.issues), arguments.seed)
        load_note = f"load took {time.perf_counter() - started:.1f} s"
    engine = create_engine(url)
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
