"""Pages under load on loopback: throughput and latency of the main pages, beside the ceiling.

Run against a database filled by bench.data:

    .venv/bin/python -m bench.load --database-url postgresql://postgres@127.0.0.1/issues_bench
    .venv/bin/python -m bench.load --database-url ... --mixed --users 200 --duration 300

It serves the app with hypercorn on a free loopback port (testing configuration, rate limits
off) and, under the same hypercorn settings, bench.ceiling: a minimal Quart route rendering a
100-row template. Logged in as several bench users (sessions made in the database, as a login
would), N keep-alive connections send requests back to back for each scenario: the ceiling
route, the board of the ~500-issue project, an issue page with 20 comments, a project's issue
list with a query, a full-text search, and a mix of writes (create an issue, move a card, add a
comment). The table gives requests per second, p50/p95/p99 in milliseconds, errors, and the
ratio to the ceiling's requests per second at the same workers and concurrency.

With --mixed, U simulated users (one connection each) browse, search, edit, comment, move and
create with a think time between requests; it prints the success rate and latencies per action.
With --mixed --profile jira-dc [--scale N] [--find-capacity], the Jira Data Center toolkit's
paced profile (bench.jira_dc) instead.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import quote

from quart import Quart
from sqlalchemy import Row, text

from app import create_app
from app.config import normalise_database_url
from bench.client import Browser
from bench.data import Shape
from bench.jira_dc import CAPACITY_SCALES, jira_dc
from bench.mixed import mixed
from bench.serving import (
    APP_TARGET,
    BOARD_SIZE,
    CARD,
    CEILING_TARGET,
    HYPERCORN_SETTINGS,
    REQUEST_TIMEOUT,
    log_in,
    start_server,
    stop_server,
)

Step = Callable[[Browser, int], Awaitable[bool]]
COMMENT = re.compile(rb'id="comment-\d+"')


# --- What to request --------------------------------------------------------------------------


@dataclass
class World:
    """What the scenarios need from the database, found by query (see bench.data)."""

    board_key: str
    list_key: str
    issue_keys: list[str]
    mix_project_id: int
    mix_key: str
    logins: dict[int, dict[str, str]] = field(default_factory=dict)  # user id -> cookies


async def discover(app: Quart, viewer_id: int) -> World:
    async with app.extensions["database"].sessionmaker() as session:

        async def one(sql: str, **values: object) -> tuple:
            row = (await session.execute(text(sql), values)).first()
            if row is None:
                raise SystemExit(f"not found; was the database filled by bench.data? ({sql})")
            return tuple(row)

        readable = "SELECT project_id FROM membership WHERE user_id = :viewer"
        (board_key,) = await one(
            f"SELECT key FROM project WHERE id IN ({readable}) "  # noqa: S608 (our own SQL)
            "ORDER BY abs(last_issue_number - :size), id LIMIT 1",
            viewer=viewer_id,
            size=BOARD_SIZE,
        )
        (list_key,) = await one(
            f"SELECT key FROM project WHERE id IN ({readable}) "  # noqa: S608
            "ORDER BY last_issue_number DESC, id LIMIT 1",
            viewer=viewer_id,
        )
        # The writes go to a small project of their own, so the board's project stays as it is.
        mix_project_id, mix_key = await one(
            f"SELECT id, key FROM project WHERE id IN ({readable}) AND key <> :board "  # noqa: S608
            "AND last_issue_number >= 64 ORDER BY last_issue_number, id LIMIT 1",
            viewer=viewer_id,
            board=board_key,
        )
        # bench.data gives exactly 20 comments to issues numbered a multiple of 100.
        with_twenty = (
            "SELECT project.key || '-' || issue.number FROM issue "  # noqa: S608 (our own SQL)
            "JOIN project ON project.id = issue.project_id "
            f"WHERE issue.project_id IN ({readable}) AND issue.project_id <> :mix "
            "AND issue.number IN (100, 200, 300, 400, 500, 600, 700, 800, 900, 1000) "
            "AND (SELECT count(*) FROM comment WHERE comment.issue_id = issue.id "
            "AND comment.deleted_at IS NULL) = 20 ORDER BY issue.id LIMIT 20"
        )
        rows = await session.execute(
            text(with_twenty), {"viewer": viewer_id, "mix": mix_project_id}
        )
        issue_keys = [row[0] for row in rows]
        if not issue_keys:
            raise SystemExit("no issue with 20 comments found; fill the database with bench.data")
    return World(board_key, list_key, issue_keys, mix_project_id, mix_key)


def getting(paths: list[str]) -> Step:
    async def step(browser: Browser, n: int) -> bool:
        return (await browser.get(paths[n % len(paths)])).status == 200

    return step


@dataclass
class MixCard:
    issue_id: int
    key: str
    version: int
    status_index: int


async def mix_cards(app: Quart, world: World, count: int) -> tuple[list[int], list[Row]]:
    """The writes' project's statuses in board order, and its first `count` issues (id, number,
    version, status_id): the cards the writes move and comment on."""
    async with app.extensions["database"].sessionmaker() as session:
        statuses = list(
            await session.scalars(
                text("SELECT id FROM workflow_status WHERE project_id = :p ORDER BY position"),
                {"p": world.mix_project_id},
            )
        )
        rows = (
            await session.execute(
                text(
                    "SELECT id, number, version, status_id FROM issue WHERE project_id = :p "
                    "ORDER BY id LIMIT :n"
                ),
                {"p": world.mix_project_id, "n": count},
            )
        ).all()
    return statuses, list(rows)


async def writing(app: Quart, world: World, browsers: list[Browser]) -> Step:
    """Create an issue, move a card, add a comment, in turn. Each connection moves and
    comments on an issue of its own, so that no two of them edit the same version."""
    statuses, rows = await mix_cards(app, world, len(browsers))
    if len(rows) < len(browsers):
        raise SystemExit(f"the write scenario needs {len(browsers)} issues in {world.mix_key}")
    cards = {
        browser: MixCard(
            row.id, f"{world.mix_key}-{row.number}", row.version, statuses.index(row.status_id)
        )
        for browser, row in zip(browsers, rows[: len(browsers)], strict=True)
    }

    async def step(browser: Browser, n: int) -> bool:
        card = cards[browser]
        if n % 3 == 0:
            answer = await browser.post(
                f"/p/{world.mix_key}/issues/new",
                {"title": f"Load test issue {n}", "description": "Made by bench.load."},
            )
            return answer.status == 302
        if n % 3 == 1:
            card.status_index = (card.status_index + 1) % len(statuses)
            answer = await browser.post(
                f"/p/{world.mix_key}/board/moves",
                {
                    "issue": card.issue_id,
                    "status": statuses[card.status_index],
                    "version": card.version,
                },
                json=True,
            )
            if answer.status != 200:
                return False
            card.version = json.loads(answer.body)["version"]
            return True
        answer = await browser.post(
            f"/{card.key}/comments", {"body": f"Comment {n} from the load."}
        )
        return answer.status == 302

    return step


# --- Measuring --------------------------------------------------------------------------------


@dataclass
class Measure:
    scenario: str
    workers: int
    concurrency: int
    latencies: list[float]
    errors: int
    seconds: float

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def percentile(self, share: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * share))] if ordered else 0.0


async def drive(browsers: list[Browser], step: Step, seconds: float) -> tuple[list[float], int]:
    """Every browser sends requests back to back for `seconds`: latencies (ms) and errors."""
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def loop(browser: Browser, offset: int) -> None:
        nonlocal errors
        n = offset
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                async with asyncio.timeout(REQUEST_TIMEOUT):
                    ok = await step(browser, n)
            except (OSError, TimeoutError, ValueError, KeyError, RuntimeError):
                ok = False
                await browser.close()
            latencies.append((time.perf_counter() - started) * 1000)
            errors += not ok
            n += 1

    await asyncio.gather(*(loop(browser, i) for i, browser in enumerate(browsers)))
    return latencies, errors


async def measure(
    name: str, workers: int, browsers: list[Browser], step: Step, seconds: float
) -> Measure:
    # A short warm-up first: connections, template compilation, prepared statements.
    await drive(browsers, step, min(2.0, max(0.5, seconds / 5)))
    started = time.perf_counter()
    latencies, errors = await drive(browsers, step, seconds)
    result = Measure(name, workers, len(browsers), latencies, errors, time.perf_counter() - started)
    print(
        f"  {name:<8} workers={workers} concurrency={len(browsers):<3} "
        f"{result.rps:8.1f} rps  p50 {result.percentile(0.5):6.1f} ms  errors {errors}",
        file=sys.stderr,
    )
    return result


def table(measures: list[Measure]) -> str:
    ceilings = {(m.workers, m.concurrency): m.rps for m in measures if m.scenario == "ceiling"}
    lines = [
        "| scenario | workers | concurrency | requests | rps | p50 ms | p95 ms | p99 ms | errors "
        "| ratio to ceiling |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m in measures:
        ceiling = ceilings.get((m.workers, m.concurrency))
        ratio = f"{m.rps / ceiling:.2f}" if ceiling else ""
        lines.append(
            f"| {m.scenario} | {m.workers} | {m.concurrency} | {len(m.latencies)} | {m.rps:.1f} "
            f"| {m.percentile(0.5):.1f} | {m.percentile(0.95):.1f} | {m.percentile(0.99):.1f} "
            f"| {m.errors} | {ratio} |"
        )
    return "\n".join(lines)


async def describe(browser: Browser, world: World, list_query: str, search_query: str) -> str:
    """What each page holds, read once from the pages themselves."""
    board = await browser.get(f"/p/{world.board_key}/board")
    issue = await browser.get(f"/{world.issue_keys[0]}")
    listed = await browser.get(f"/p/{world.list_key}?q={quote(list_query)}")
    found = await browser.get(f"/search?q={quote(search_query)}")
    comments = len(COMMENT.findall(issue.body))
    return (
        f"board /p/{world.board_key}/board: {len(CARD.findall(board.body))} cards, "
        f"{len(board.body) // 1024} KiB; issue pages {', '.join(world.issue_keys[:3])}...: "
        f"{comments} comments, {len(issue.body) // 1024} KiB; "
        f"list /p/{world.list_key}?q={list_query}: {listed.body.count(b'<tr') - 1} rows; "
        f"search {search_query!r}: {found.body.count(b'<tr') - 1} rows"
    )


async def pages(arguments: argparse.Namespace, app: Quart, environment: dict[str, str]) -> None:
    shape = Shape(issues=0)
    logins = list(range(1, min(arguments.logins, shape.wide_users) + 1))
    world = await discover(app, logins[0])
    world.logins = await log_in(app, logins)
    list_path = f"/p/{world.list_key}?q={quote(arguments.list_query)}"
    search_path = f"/search?q={quote(arguments.search_query)}"
    measures: list[Measure] = []
    notes = ""
    for workers in arguments.workers:
        app_server = await start_server(APP_TARGET, workers, environment)
        ceiling_server = await start_server(CEILING_TARGET, workers, environment)
        try:
            await asyncio.sleep(1)
            for concurrency in arguments.concurrency:
                ceiling = [Browser(ceiling_server.port) for _ in range(concurrency)]
                browsers = [
                    Browser(app_server.port, world.logins[logins[n % len(logins)]])
                    for n in range(concurrency)
                ]
                # Connections are opened one request at a time for both servers alike: a burst
                # of connects can all land on one of several workers (whichever accepts first).
                for browser in ceiling:
                    await browser.get("/")
                for browser in browsers:
                    await browser.learn_csrf("/account/")
                if not notes:
                    notes = await describe(
                        browsers[0], world, arguments.list_query, arguments.search_query
                    )
                    print(notes, file=sys.stderr)
                runs: list[tuple[str, list[Browser], Step]] = [
                    ("ceiling", ceiling, getting(["/"])),
                    ("board", browsers, getting([f"/p/{world.board_key}/board"])),
                    ("issue", browsers, getting([f"/{key}" for key in world.issue_keys])),
                    ("list", browsers, getting([list_path])),
                    ("search", browsers, getting([search_path])),
                    ("write", browsers, await writing(app, world, browsers)),
                ]
                for name, clients, step in runs:
                    if name in arguments.scenarios:
                        measures.append(
                            await measure(name, workers, clients, step, arguments.duration)
                        )
                for browser in ceiling + browsers:
                    await browser.close()
        finally:
            stop_server(app_server)
            stop_server(ceiling_server)

    backend = app.extensions["database"].backend
    print(
        f"Pages under load: {backend}, hypercorn {' '.join(HYPERCORN_SETTINGS)}, "
        f"{arguments.duration:g} s per scenario after a warm-up, client on the same machine "
        f"({os.cpu_count()} cores), logged in as users {logins[0]}..{logins[-1]}.\n{notes}.\n"
        f"Scenarios: ceiling = bench.ceiling's 100-row template; list = {list_path}; "
        f"search = {search_path}; write = create issue / move card / add comment in turn "
        f"(project {world.mix_key}).\n"
    )
    print(table(measures))


async def main(arguments: argparse.Namespace) -> None:
    url = normalise_database_url(arguments.database_url)
    environment = {**os.environ, "ISSUES_CONFIG": "testing", "DATABASE_URL": url}
    if arguments.pool_size:
        environment["DATABASE_POOL_SIZE"] = str(arguments.pool_size)
    app = create_app("testing", DATABASE_URL=url, RATE_LIMIT_ENABLED=False)
    try:
        if arguments.mixed and arguments.profile == "jira-dc":
            await jira_dc(arguments, app, environment)
        elif arguments.mixed:
            await mixed(arguments, app, environment)
        else:
            await pages(arguments, app, environment)
    finally:
        await app.extensions["database"].dispose()


def numbers(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def scales(text: str) -> list[float]:
    return sorted(float(part) for part in text.split(",") if part)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True, help="a database filled by bench.data")
    parser.add_argument("--workers", type=numbers, default=[1, os.cpu_count() or 2])
    parser.add_argument("--concurrency", type=numbers, default=[1, 32])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    parser.add_argument(
        "--scenarios",
        type=lambda text: text.split(","),
        default=["ceiling", "board", "issue", "list", "search", "write"],
    )
    parser.add_argument("--logins", type=int, default=8, help="users the connections log in as")
    parser.add_argument("--list-query", default="is:open sort:updated-desc")
    parser.add_argument("--search-query", default="webhook")
    parser.add_argument("--pool-size", type=int, help="DATABASE_POOL_SIZE per worker")
    parser.add_argument("--mixed", action="store_true", help="simulated users (see --profile)")
    parser.add_argument("--users", type=int, default=200, help="--mixed; jira-dc: per 1x scale")
    parser.add_argument("--think", type=float, default=1.0, help="mean think time (s), --mixed")
    parser.add_argument(
        "--profile",
        choices=["think", "jira-dc"],
        default="think",
        help="--mixed: think time (default) or the Jira DC toolkit's paced profile",
    )
    parser.add_argument(
        "--scale", type=float, default=1.0, help="jira-dc: times the toolkit's users and actions"
    )
    parser.add_argument(
        "--warm-up",
        type=float,
        default=15.0,
        help="jira-dc: seconds at the run's rate before measuring (first views after start)",
    )
    parser.add_argument(
        "--find-capacity",
        action="store_true",
        help="jira-dc: run --capacity-scales in turn until one misses p95 or success",
    )
    parser.add_argument(
        "--capacity-scales",
        type=scales,
        default=list(CAPACITY_SCALES),
        help="jira-dc --find-capacity: the scales to try, in order",
    )
    asyncio.run(main(parser.parse_args()))
