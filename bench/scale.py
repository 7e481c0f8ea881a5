"""The queries of the main pages on a big database: p50/p99 per page, and their plans.

Run with `.venv/bin/python -m bench.scale --database-url postgresql://postgres@127.0.0.1/issues_bench`
on a database filled by bench.data (1,000,000 issues for the figures). Each operation calls the
service functions its page (or API endpoint) calls, in the same order, as bench user 1 (a member
of 200 projects), in a fresh session, --runs times. The table gives milliseconds, how many SQL
statements the operation sends, and any whole-table scan of a big table in their plans. The plans
(PostgreSQL: EXPLAIN (ANALYZE, BUFFERS); SQLite: EXPLAIN QUERY PLAN) of every statement of the
slowest operation, and of any operation with such a scan, are saved to bench/plans/.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import re
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quart import Quart
from sqlalchemy import event, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app import create_app
from app.blueprints.finding import SEARCH_COUNT_LIMIT
from app.config import normalise_database_url
from app.models import Issue, IssueRelation, Project, RelationKind, User
from app.services import (
    activity,
    attachments,
    boards,
    issue_views,
    projects,
    relation_views,
    search,
)
from app.services.access import may_write
from app.services.references import link_targets
from bench import milestones as milestone_scenario
from bench.load import World, discover
from bench.scale_attachments import give_files, issue_files

PLANS = Path(__file__).resolve().parent / "plans"
BIG_TABLES = (
    "issue",
    "comment",
    "activity",
    "issue_label",
    "issue_search",
    "watcher",
    "attachment",
)
POSTGRES_SCAN = re.compile(r"Seq Scan on (\w+)")
SQLITE_SCAN = re.compile(r"^SCAN (\w+)(?! VIRTUAL TABLE)")

Operation = Callable[[AsyncSession], Awaitable[Any]]


# --- The pages' service calls -----------------------------------------------------------------


def issue_list(viewer: User, key: str, query: str) -> Operation:
    """issues.project_issues, for a member (who may write, so the bulk-edit choices load)."""

    async def run(session: AsyncSession) -> None:
        project = await projects.project_by_key(session, viewer, key)
        await search.search_issues(session, viewer, query, project=project)
        if await may_write(session, viewer, project):
            await projects.workflow(session, project.id)
            await projects.members(session, project.id)
            await projects.labels(session, project.id)

    return run


def search_page(viewer: User, query: str) -> Operation:
    """finding.search_page: a page of results, their count, the saved searches."""

    async def run(session: AsyncSession) -> None:
        page = await search.search_issues(session, viewer, query)
        await search.count_issues(session, viewer, page.query, up_to=SEARCH_COUNT_LIMIT)
        await search.list_saved_searches(session, viewer)

    return run


def board(viewer: User, key: str) -> Operation:
    """boards.board: the cards' light rows (their HTML comes from the card cache once rendered;
    a cache miss adds one query for the missing cards)."""

    async def run(session: AsyncSession) -> None:
        project = await projects.project_by_key(session, viewer, key)
        await boards.board(session, viewer, project.id)
        await may_write(session, viewer, project)

    return run


def issue_page(viewer: User, key: str) -> Operation:
    """issues._issue_page."""

    async def run(session: AsyncSession) -> None:
        heading = await issue_views.issue_heading(session, viewer, key)
        issue = await issue_views.get_issue(session, viewer, heading.project.id, heading.number)
        entries = await issue_views.timeline(session, issue)
        await attachments.list_attachments(session, viewer, issue.id)
        texts = [issue.description] + [entry.comment.body for entry in entries if entry.comment]
        await link_targets(session, viewer, texts)
        await relation_views.issue_relations(session, viewer, issue.id, issue.parent_id)
        if await may_write(session, viewer, issue.project):
            await projects.members(session, issue.project_id)
            await projects.labels(session, issue.project_id)
        await projects.workflow(session, issue.project_id)

    return run


def project_activity(viewer: User, key: str, behind: int | None) -> Operation:
    """GET /api/projects/<key>/activity?after=: the last `behind` events (a poll), or the
    first page when None."""

    async def run(session: AsyncSession) -> None:
        project = await projects.project_by_key(session, viewer, key)
        after = max(0, project.last_event_seq - behind) if behind is not None else 0
        await activity.activity_since(session, project.id, after, limit=100)

    return run


def issue_activity(viewer: User, key: str) -> Operation:
    """GET /api/issues/<key>/activity?after=0."""

    async def run(session: AsyncSession) -> None:
        issue = await issue_views.get_issue_by_key(session, viewer, key)
        await activity.activity_since(session, issue.project_id, 0, issue_id=issue.id, limit=100)

    return run


def relations_api(viewer: User, key: str) -> Operation:
    """GET /api/v1/issues/<key>/relations: its parent, sub-issues and relations."""

    async def run(session: AsyncSession) -> None:
        issue = await issue_views.get_issue_by_key(session, viewer, key)
        await relation_views.relations_of_issue(session, viewer, issue)

    return run


# The planning scenarios' shapes (decision 0018): a parent with this many sub-issues, and this
# many blocked cards on the board (half of them with an open blocker in the same project).
SUB_ISSUES = 50
BLOCKED_CARDS = 40


async def prepare_planning(app: Quart, world: World) -> str:
    """Give the board's project a parent with SUB_ISSUES sub-issues and BLOCKED_CARDS blocked
    cards (rows written directly, once: a second run finds them). Returns the parent's key."""
    async with app.extensions["database"].sessionmaker() as session:
        project = await session.scalar(select(Project).where(Project.key == world.board_key))
        assert project is not None
        numbers = list(
            await session.execute(
                select(Issue.id, Issue.number)
                .where(Issue.project_id == project.id)
                .order_by(Issue.number)
                .limit(1 + SUB_ISSUES + 2 * BLOCKED_CARDS)
            )
        )
        parent_id, parent_number = numbers[0]
        children = [row.id for row in numbers[1 : 1 + SUB_ISSUES]]
        pairs = numbers[1 + SUB_ISSUES :]
        has = await session.scalar(
            select(func.count()).select_from(Issue).where(Issue.parent_id == parent_id)
        )
        if not has:
            await session.execute(
                update(Issue).where(Issue.id.in_(children)).values(parent_id=parent_id)
            )
            for blocker, blocked in zip(pairs[::2], pairs[1::2], strict=False):
                session.add(
                    IssueRelation(
                        source_id=blocker.id, target_id=blocked.id, kind=RelationKind.BLOCKS
                    )
                )
            await session.commit()
        return f"{project.key}-{parent_number}"


def operations(
    viewer: User, world: World, parent_key: str, milestone_id: int
) -> dict[str, Operation]:
    big, issue_key = world.list_key, world.issue_keys[0]
    return {
        **milestone_scenario.operations(viewer, big, milestone_id),
        f"list `is:open` ({big})": issue_list(viewer, big, "is:open"),
        f"list `is:open label:bug sort:updated-desc` ({big})": issue_list(
            viewer, big, "is:open label:bug sort:updated-desc"
        ),
        "search `webhook`": search_page(viewer, "webhook"),
        "search `login is:open label:bug`": search_page(viewer, "login is:open label:bug"),
        f"board ({world.board_key})": board(viewer, world.board_key),
        f"issue page, 20 comments ({issue_key})": issue_page(viewer, issue_key),
        f"activity after= last 100 ({big})": project_activity(viewer, big, 100),
        f"activity after=0 ({big})": project_activity(viewer, big, None),
        f"issue activity after=0 ({issue_key})": issue_activity(viewer, issue_key),
        f"parent page, {SUB_ISSUES} sub-issues ({parent_key})": issue_page(viewer, parent_key),
        f"relations API, {SUB_ISSUES} sub-issues ({parent_key})": relations_api(viewer, parent_key),
        f"board with {BLOCKED_CARDS // 2} blocked marks ({world.board_key})": board(
            viewer, world.board_key
        ),
        f"list `parent:{parent_key}` ({world.board_key})": issue_list(
            viewer, world.board_key, f"parent:{parent_key}"
        ),
        "search `is:blocked`": search_page(viewer, "is:blocked"),
        f"issue attachments, 30 files ({issue_key})": issue_files(viewer, issue_key),
    }


# --- Timing and plans -------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    samples: list[float]
    statements: list[tuple[str, Any]]
    plans: list[list[str]]
    scans: set[str]
    # Milliseconds the garbage collector ran during each sample.
    collecting: list[float]

    @property
    def worst(self) -> tuple[float, float]:
        """The slowest run and the collector's share of it."""
        return max(zip(self.samples, self.collecting, strict=True))

    def percentile(self, share: float) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


class CollectorClock:
    """The time the garbage collector takes, summed over its passes (a gc.callbacks probe): what
    tells a slow run that waited for a full collection from one that waited for the database."""

    def __init__(self) -> None:
        self.milliseconds = 0.0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.milliseconds += (time.perf_counter() - self._started) * 1000


async def explain(app: Quart, statement: str, parameters: Any) -> list[str]:
    engine = app.extensions["database"].engine
    async with engine.connect() as connection:
        raw = (await connection.get_raw_connection()).driver_connection
        if engine.dialect.name == "postgresql":
            rows = await raw.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", *parameters)
            return [row[0] for row in rows]
        cursor = await raw.execute(f"EXPLAIN QUERY PLAN {statement}", parameters)
        return [row[3] for row in await cursor.fetchall()]


def whole_table_scans(plan: list[str]) -> set[str]:
    found = set()
    for line in plan:
        match = POSTGRES_SCAN.search(line) or SQLITE_SCAN.match(line.strip())
        if match and match.group(1) in BIG_TABLES:
            found.add(match.group(1))
    return found


def save_plans(result: Result, why: str) -> None:
    slug = re.sub(r"[^a-z0-9]+", "-", result.name.lower()).strip("-")
    for number, ((statement, parameters), plan) in enumerate(
        zip(result.statements, result.plans, strict=True), 1
    ):
        path = PLANS / f"{slug}-{number:02d}.txt"
        path.write_text(
            f"-- {result.name} ({why}), statement {number} of {len(result.plans)}\n"
            f"-- parameters: {parameters!r}\n{statement}\n\n" + "\n".join(plan) + "\n"
        )


async def main(arguments: argparse.Namespace) -> None:
    url = normalise_database_url(arguments.database_url)
    app = create_app("testing", DATABASE_URL=url)
    database = app.extensions["database"]
    world = await discover(app, arguments.viewer)
    parent_key = await prepare_planning(app, world)
    _, milestone_id = await milestone_scenario.prepare(app, arguments.viewer, world.list_key)
    async with database.sessionmaker() as session:
        viewer = await session.get_one(User, arguments.viewer)
        issue_count = sum(await session.scalars(select(Project.last_issue_number)))
        session.expunge(viewer)
    await give_files(database, world.issue_keys[0], viewer)

    sent: list[tuple[str, Any]] | None = None
    if arguments.gc_freeze:
        # What a served worker does once started (GC_FREEZE_AFTER_START, decision 0014).
        gc.collect()
        gc.freeze()
    clock = CollectorClock()
    gc.callbacks.append(clock)

    @event.listens_for(database.engine.sync_engine, "before_cursor_execute")
    def remember(connection: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if sent is not None and statement.lstrip().upper().startswith(("SELECT", "WITH")):
            sent.append((statement, parameters))

    results = []
    for name, operation in operations(viewer, world, parent_key, milestone_id).items():
        sent = []
        async with database.sessionmaker() as session:  # once to warm up, and to see its SQL
            await operation(session)
        statements, sent = sent, None
        samples, collecting = [], []
        for _ in range(arguments.runs):
            collected_before = clock.milliseconds
            started = time.perf_counter()
            async with database.sessionmaker() as session:
                await operation(session)
            samples.append((time.perf_counter() - started) * 1000)
            collecting.append(clock.milliseconds - collected_before)
        plans = [await explain(app, statement, values) for statement, values in statements]
        scans = {
            f"{table} (#{number})"
            for number, plan in enumerate(plans, 1)
            for table in whole_table_scans(plan)
        }
        results.append(Result(name, samples, statements, plans, scans, collecting))

    PLANS.mkdir(exist_ok=True)
    for old in PLANS.glob("*.txt"):
        old.unlink()
    slowest = max(results, key=lambda r: statistics.median(r.samples))
    for result in results:
        if result is slowest or result.scans:
            why = "the slowest" if result is slowest else "scans a big table"
            save_plans(result, why)

    print(
        f"Queries at scale: {database.backend}, {issue_count:,} issues, as user "
        f"{arguments.viewer}; {arguments.runs} runs each in a fresh session (milliseconds); "
        f"start-up heap {'frozen' if arguments.gc_freeze else 'not frozen'}.\n"
    )
    print(
        "| operation | runs | p50 | p99 | slowest run: of it collecting garbage "
        "| statements | whole-table scans (statement) |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in results:
        scans = ", ".join(sorted(r.scans)) or "none"
        slowest_run, its_collecting = r.worst
        print(
            f"| {r.name} | {len(r.samples)} | {statistics.median(r.samples):.1f} "
            f"| {r.percentile(0.99):.1f} | {slowest_run:.1f}: {its_collecting:.1f} "
            f"| {len(r.statements)} | {scans} |"
        )
    print(f"\nPlans of the slowest ({slowest.name}) and of any with a scan: {PLANS}/")
    await database.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True, help="a database filled by bench.data")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--viewer", type=int, default=1, help="the user the pages are read as")
    parser.add_argument(
        "--gc-freeze",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="gc.freeze() the heap after setting up, as a served worker does after start-up "
        "(GC_FREEZE_AFTER_START); --no-gc-freeze shows what an unfrozen heap costs",
    )
    asyncio.run(main(parser.parse_args()))
