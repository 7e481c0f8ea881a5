"""Mixed load: simulated users who browse, search, edit, comment, move cards and create issues.

Run through bench.load: `.venv/bin/python -m bench.load --database-url URL --mixed --users 200
--duration 300`. Each user (bench.data's users 1..N, logged in) has one keep-alive connection,
waits a think time drawn from an exponential law between actions, and acts in the projects it
belongs to. Prints requests, errors, 409 conflicts and p50/p95/p99 per action, the share of
successful requests and the p95 against the goals (99.9%, 200 ms). `--profile jira-dc` runs
the Jira Data Center toolkit's profile instead (bench.jira_dc); this module keeps what both share.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from urllib.parse import quote

from quart import Quart
from sqlalchemy import text

from bench.client import Answer, Browser, ConnectionLost
from bench.data import Shape
from bench.serving import (
    APP_TARGET,
    BOARD_SIZE,
    CARD,
    REQUEST_TIMEOUT,
    VERSION_INPUT,
    log_in,
    start_server,
    stop_server,
)

SEARCH_WORDS = ("login", "webhook", "export", "timeout", "dashboard", "calendar", "token")
# How often each action is chosen (weights). "move" and "edit" first load the board or the
# issue page they act from; those loads count as "board" and "issue".
ACTIONS = {"board": 20, "issue": 25, "list": 15, "search": 10, "edit": 10, "comment": 10}
ACTIONS |= {"create": 5, "move": 5}
# What a request can fail with on the client's side: a time-out, a lost or refused connection,
# an answer cut short or not HTTP.
FAILURES = (OSError, TimeoutError, EOFError, ValueError, RuntimeError, ConnectionLost)


@dataclass
class Projects:
    keys: list[str]  # every project the user belongs to
    sizes: dict[str, int]
    boards: list[str]  # those whose board is of a size people keep open
    statuses: dict[str, list[int]]


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    conflicts: dict[str, int] = field(default_factory=dict)

    def add(self, action: str, milliseconds: float, status: int, expected: int) -> None:
        self.latencies.setdefault(action, []).append(milliseconds)
        if status == 409:
            self.conflicts[action] = self.conflicts.get(action, 0) + 1
        elif status != expected:
            self.errors[action] = self.errors.get(action, 0) + 1

    def every(self) -> list[float]:
        return [value for values in self.latencies.values() for value in values]

    def success(self) -> float:
        """The share of requests answered as expected or with a 409 (a race, not a failure)."""
        every = self.every()
        return 1 - sum(self.errors.values()) / len(every) if every else 0.0


def at(ordered: list[float], share: float) -> float:
    """The value below which `share` of the sorted values lie (0 when there are none)."""
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))] if ordered else 0.0


def action_table(tally: Tally, pages: dict[str, str] | None = None) -> str:
    """One Markdown row per action (in `pages`' order, with the page each one asks, if given),
    then all of them together."""
    names = list(pages) if pages else sorted(tally.latencies)
    header = "| action | page " if pages else "| action "
    lines = [
        header + "| requests | errors | conflicts (409) | successful | p50 ms | p95 ms | p99 ms |",
        "|---" * (8 + bool(pages)) + "|",
    ]
    rows = [(name, tally.latencies.get(name, [])) for name in names] + [("all", tally.every())]
    for name, values in rows:
        ordered = sorted(values)
        failed = sum(tally.errors.values()) if name == "all" else tally.errors.get(name, 0)
        clashed = sum(tally.conflicts.values()) if name == "all" else tally.conflicts.get(name, 0)
        success = f"{1 - failed / len(values):.3%}" if values else ""
        page = f"| {pages.get(name, '')} " if pages else ""
        lines.append(
            f"| {name} {page}| {len(values)} | {failed} | {clashed} | {success} "
            f"| {at(ordered, 0.5):.1f} | {at(ordered, 0.95):.1f} | {at(ordered, 0.99):.1f} |"
        )
    return "\n".join(lines)


async def member_projects(app: Quart, user_ids: list[int]) -> dict[int, Projects]:
    async with app.extensions["database"].sessionmaker() as session:
        rows = (
            await session.execute(
                text(
                    "SELECT membership.user_id, project.key, project.last_issue_number, "
                    "project.id FROM membership JOIN project ON project.id = membership.project_id "
                    "WHERE membership.user_id <= :last AND project.last_issue_number > 0"
                ),
                {"last": max(user_ids)},
            )
        ).all()
        statuses: dict[int, list[int]] = {}
        for project_id, status_id in await session.execute(
            text("SELECT project_id, id FROM workflow_status ORDER BY project_id, position")
        ):
            statuses.setdefault(project_id, []).append(status_id)
    found: dict[int, Projects] = {}
    for user_id, key, size, project_id in rows:
        mine = found.setdefault(user_id, Projects([], {}, [], {}))
        mine.keys.append(key)
        mine.sizes[key] = size
        mine.statuses[key] = statuses[project_id]
        if size <= 2 * BOARD_SIZE:
            mine.boards.append(key)
    for mine in found.values():
        mine.boards = mine.boards or [min(mine.keys, key=mine.sizes.__getitem__)]
    return found


async def simulate(
    browser: Browser, projects: Projects, tally: Tally, deadline: float, think: float, seed: int
) -> None:
    """One person: think, act, and again, until the deadline."""
    rng = random.Random(seed)
    names, weights = list(ACTIONS), list(ACTIONS.values())

    async def timed(action: str, call: Awaitable[Answer], expected: int) -> Answer | None:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                answer = await call
        except FAILURES:
            await browser.close()
            tally.add(action, (time.perf_counter() - started) * 1000, 0, expected)
            return None
        tally.add(action, (time.perf_counter() - started) * 1000, answer.status, expected)
        return answer

    await asyncio.sleep(rng.random() * think)  # arrive spread out, not all at once
    await timed("login", browser.learn_csrf("/account/"), 200)
    while time.perf_counter() < deadline:
        await asyncio.sleep(rng.expovariate(1 / think) if think else 0)
        action = rng.choices(names, weights)[0]
        key = rng.choice(projects.keys)
        issue_key = f"{key}-{rng.randint(1, projects.sizes[key])}"
        if action in ("board", "move"):
            board_key = rng.choice(projects.boards)
            board = await timed("board", browser.get(f"/p/{board_key}/board"), 200)
            cards = CARD.findall(board.body) if board else []
            if action == "move" and cards:
                issue_id, version = rng.choice(cards)
                await timed(
                    "move",
                    browser.post(
                        f"/p/{board_key}/board/moves",
                        {
                            "issue": int(issue_id),
                            "status": rng.choice(projects.statuses[board_key]),
                            "version": int(version),
                        },
                        json=True,
                    ),
                    200,
                )
        elif action in ("issue", "edit"):
            page = await timed("issue", browser.get(f"/{issue_key}"), 200)
            version = VERSION_INPUT.search(page.body) if page else None
            if action == "edit" and version:
                form = {"field": "priority", "priority": rng.choice(("high", "medium", "low"))}
                form["version"] = version.group(1).decode()
                await timed("edit", browser.post(f"/{issue_key}/edit", form), 302)
        elif action == "list":
            await timed("list", browser.get(f"/p/{key}?q={quote('is:open')}"), 200)
        elif action == "search":
            await timed("search", browser.get(f"/search?q={rng.choice(SEARCH_WORDS)}"), 200)
        elif action == "comment":
            body = {"body": f"Looked at this again ({rng.randint(1, 10**6)})."}
            await timed("comment", browser.post(f"/{issue_key}/comments", body), 302)
        else:
            form = {"title": f"Found by a simulated user {rng.randint(1, 10**6)}"}
            await timed("create", browser.post(f"/p/{key}/issues/new", form), 302)
    await browser.close()


async def mixed(arguments: argparse.Namespace, app: Quart, environment: dict[str, str]) -> None:
    if arguments.users > Shape(issues=0).bench_users:
        raise SystemExit("the think-time profile has bench.data's 200 bench users at most")
    user_ids = list(range(1, arguments.users + 1))
    logins = await log_in(app, user_ids)
    projects = await member_projects(app, user_ids)
    workers = arguments.workers[0]
    server = await start_server(APP_TARGET, workers, environment)
    tally = Tally()
    try:
        await asyncio.sleep(1)
        deadline = time.perf_counter() + arguments.duration
        await asyncio.gather(
            *(
                simulate(
                    Browser(server.port, logins[user_id]),
                    projects[user_id],
                    tally,
                    deadline,
                    arguments.think,
                    user_id,
                )
                for user_id in user_ids
            )
        )
    finally:
        stop_server(server)

    every = sorted(tally.every())
    backend = app.extensions["database"].backend
    print(
        f"Mixed load: {len(user_ids)} users, think time {arguments.think:g} s on average, "
        f"{arguments.duration:g} s, {workers} worker(s), {backend}.\n"
    )
    print(action_table(tally))
    success, p95 = tally.success(), at(every, 0.95)
    print(
        f"\nSuccessful: {success:.3%} of {len(every)} requests (goal 99.9%: "
        f"{'met' if success >= 0.999 else 'missed'}); p95 {p95:.1f} ms (goal under 200 ms: "
        f"{'met' if p95 < 200 else 'missed'}). A 409 (an edit on a version someone else "
        "changed) is the app's answer to a race, counted apart and not as an error."
    )
