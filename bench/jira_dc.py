"""The Jira Data Center performance toolkit's load profile, paced open-loop, and a capacity search.

Run through bench.load: `.venv/bin/python -m bench.load --database-url URL --mixed --profile
jira-dc [--scale 10] [--find-capacity]`. The profile is Atlassian's dc-app-performance-toolkit's
(app/jira.yml): 200 virtual users, 54,500 actions an hour in all, its action percentages, each
action mapped onto this tracker's page (ACTION_PAGES). As in the toolkit, every measured step
of an action takes one slot of the user's pace (3600 * 200 / 54,500 = 13.2 s); unlike the
toolkit, a user's slots are due on a fixed schedule whatever the server does (a slow answer does
not push the next action back), so the offered rate holds when the server slows, and latency is
measured from the moment a step was due. `--scale N` runs N times the users at the same rate.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import quote

from quart import Quart

from bench.client import Answer, Browser
from bench.data import COMMON_WORDS, Shape
from bench.mixed import (
    FAILURES,
    SEARCH_WORDS,
    Projects,
    Tally,
    action_table,
    at,
    member_projects,
)
from bench.serving import (
    APP_TARGET,
    REQUEST_TIMEOUT,
    VERSION_INPUT,
    log_in,
    start_server,
    stop_server,
)

# atlassian/dc-app-performance-toolkit, app/jira.yml at 9145a9b (2026-04-21): `concurrency`,
# `total_actions_per_hour` and the action percentages (Locust task weights; they sum to 100).
TOOLKIT_USERS = 200
TOOLKIT_ACTIONS_PER_HOUR = 54_500
TOOLKIT_MIX = {
    "view_issue": 34,
    "search_jql": 11,
    "view_dashboard": 10,
    "browse_projects": 9,
    "view_scrum_board": 8,
    "view_kanban_board": 7,
    "view_backlog": 6,
    "edit_issue": 5,
    "create_issue": 4,
    "view_project_summary": 3,
    "add_comment": 2,
    "browse_boards": 1,
}
# The toolkit paces each user to total_actions_per_hour / concurrency measured steps an hour.
PACE = 3600 * TOOLKIT_USERS / TOOLKIT_ACTIONS_PER_HOUR
# Each measured step of the toolkit (create, edit and comment have two) and the page it asks here.
ACTION_PAGES = {
    "view_issue": "GET /KEY-N (issue page)",
    "search_jql": "GET /search?q=WORD sort:created-asc",
    "view_dashboard": "GET / (home: assigned to me)",
    "browse_projects": "GET /projects",
    "view_scrum_board": "GET /p/KEY/board",
    "view_kanban_board": "GET /p/KEY/board",
    "view_backlog": "GET /p/KEY?q=is:open (board's project)",
    "edit_issue:open_editor": "GET /KEY-N",
    "edit_issue:save_edit": "POST /KEY-N/edit (description)",
    "create_issue:open_quick_create": "GET /p/KEY/issues/new",
    "create_issue:fill_and_submit_issue_form": "POST /p/KEY/issues/new",
    "view_project_summary": "GET /p/KEY (project's issues)",
    "add_comment:open_comment": "GET /KEY-N",
    "add_comment:save_comment": "POST /KEY-N/comments",
    "browse_boards": "GET /projects (boards are per project)",
}
GOAL_P95_MS = 200.0
GOAL_SUCCESS = 0.999
GOAL_P95_AT_ONE_MS = 50.0
CAPACITY_SCALES = (0.25, 0.5, 1, 2, 3, 4, 6, 8, 10, 13, 16, 20)


@dataclass
class VirtualUser:
    """One of the toolkit's virtual users: a login session of a bench account, and the
    connections it has open at once (more than one when a step is due before the last ends)."""

    account: int
    projects: Projects
    rng: random.Random
    port: int
    cookies: dict[str, str]
    csrf: str = ""
    idle: list[Browser] = field(default_factory=list)

    def browser(self) -> Browser:
        if self.idle:
            return self.idle.pop()
        browser = Browser(self.port, self.cookies)
        browser.csrf = self.csrf
        return browser

    def issue_key(self) -> str:
        key = self.rng.choice(self.projects.keys)
        return f"{key}-{self.rng.randint(1, self.projects.sizes[key])}"

    def words(self, characters: int) -> str:
        return " ".join(self.rng.choices(COMMON_WORDS, k=characters // 4))[:characters]


Send = Callable[[Browser], Awaitable[Answer]]


@dataclass
class Run:
    """One paced run: its schedule, and what came back."""

    start: float
    measured_from: float  # steps due before this are the warm-up: sent, not counted
    deadline: float
    tally: Tally = field(default_factory=Tally)
    offered: int = 0  # steps due before the deadline
    answered: int = 0  # steps answered as expected (or 409) before the deadline
    lags: list[float] = field(default_factory=list)  # ms from a step's due time to its send
    in_flight: int = 0
    peak_in_flight: int = 0  # requests sent and not yet answered, at most (counted or not)

    async def step(
        self, user: VirtualUser, name: str, dues: list[float], slot: int, send: Send, expected: int
    ) -> Answer | None:
        """Send step `slot` of an action when it is due; its latency runs from the due time.
        A step due in the warm-up is sent and not counted; one due after the end is not sent."""
        due = dues[slot]
        if due >= self.deadline:
            return None
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        browser = user.browser()
        sent = time.perf_counter()
        counted = due >= self.measured_from
        answer, status = None, 0
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                answer = await send(browser)
            status = answer.status
        except FAILURES:
            pass
        finished = time.perf_counter()
        self.in_flight -= 1
        # Hypercorn closes a connection idle for 5 s, well inside the 13.2 s pace, so each step
        # opens its own (as a browser would); closing here saves the client a stale retry.
        await browser.close()
        user.idle.append(browser)
        if counted:
            self.lags.append((sent - due) * 1000)
            self.tally.add(name, (finished - due) * 1000, status, expected)
            self.answered += status in (expected, 409) and finished <= self.deadline
        return answer if status == expected else None


def getting(path: str) -> Send:
    return lambda browser: browser.get(path)


def posting(path: str, form: dict[str, str | int]) -> Send:
    return lambda browser: browser.post(path, form)


async def act(run: Run, user: VirtualUser, action: str, dues: list[float]) -> None:
    """One of the toolkit's actions on this tracker's pages, its steps at their due times."""
    rng, mine = user.rng, user.projects
    key, board_key = rng.choice(mine.keys), rng.choice(mine.boards)
    if action == "view_issue":
        await run.step(user, action, dues, 0, getting(f"/{user.issue_key()}"), 200)
    elif action == "search_jql":
        query = quote(f"{rng.choice(SEARCH_WORDS)} sort:created-asc")
        await run.step(user, action, dues, 0, getting(f"/search?q={query}"), 200)
    elif action == "view_dashboard":
        await run.step(user, action, dues, 0, getting("/"), 200)
    elif action in ("browse_projects", "browse_boards"):
        await run.step(user, action, dues, 0, getting("/projects"), 200)
    elif action in ("view_scrum_board", "view_kanban_board"):
        await run.step(user, action, dues, 0, getting(f"/p/{board_key}/board"), 200)
    elif action == "view_backlog":
        path = f"/p/{board_key}?q={quote('is:open')}"
        await run.step(user, action, dues, 0, getting(path), 200)
    elif action == "view_project_summary":
        await run.step(user, action, dues, 0, getting(f"/p/{key}"), 200)
    elif action == "create_issue":
        opened = await run.step(
            user, f"{action}:open_quick_create", dues, 0, getting(f"/p/{key}/issues/new"), 200
        )
        if opened:
            form = {"title": f"Made under load {rng.randint(1, 10**6)}"}
            form["description"] = user.words(500)
            send = posting(f"/p/{key}/issues/new", form)
            await run.step(user, f"{action}:fill_and_submit_issue_form", dues, 1, send, 302)
    elif action == "edit_issue":
        issue_key = user.issue_key()
        page = await run.step(user, f"{action}:open_editor", dues, 0, getting(f"/{issue_key}"), 200)
        version = VERSION_INPUT.search(page.body) if page else None
        if version:
            form = {"field": "description", "description": user.words(500)}
            form["version"] = version.group(1).decode()
            send = posting(f"/{issue_key}/edit", form)
            await run.step(user, f"{action}:save_edit", dues, 1, send, 302)
    elif action == "add_comment":
        issue_key = user.issue_key()
        page = await run.step(
            user, f"{action}:open_comment", dues, 0, getting(f"/{issue_key}"), 200
        )
        if page:
            form = {"body": f"Looked at this under load ({rng.randint(1, 10**6)})."}
            send = posting(f"/{issue_key}/comments", form)
            await run.step(user, f"{action}:save_comment", dues, 1, send, 302)
    else:
        raise ValueError(f"unknown action {action}")


STEPS = {
    action: 2 if action in ("create_issue", "edit_issue", "add_comment") else 1
    for action in TOOLKIT_MIX
}


async def pace(run: Run, user: VirtualUser) -> None:
    """A user's schedule: a slot every PACE seconds from a random offset within the first, an
    action drawn by the toolkit's weights taking one slot per step, until the deadline."""
    names, weights = list(TOOLKIT_MIX), list(TOOLKIT_MIX.values())
    due = run.start + user.rng.random() * PACE  # users arrive spread over one pace: full rate
    actions: list[asyncio.Task[None]] = []
    while True:
        action = user.rng.choices(names, weights)[0]
        dues = [due + slot * PACE for slot in range(STEPS[action])]
        if dues[0] >= run.deadline:
            break
        run.offered += sum(run.measured_from <= due < run.deadline for due in dues)
        # A task per action: the next one is due on time even while this one is still waiting.
        actions.append(asyncio.create_task(act(run, user, action, dues)))
        due = dues[-1] + PACE
        await asyncio.sleep(max(0.0, min(dues[-1], run.deadline) - time.perf_counter()))
    await asyncio.gather(*actions)


async def enlist(
    app: Quart, port: int, projects: dict[int, Projects], first: int, count: int
) -> list[VirtualUser]:
    """Virtual users first..first+count-1, each with a login session of its own. They take
    bench accounts 1..200 in turn: those are the accounts with memberships to act in (users
    11..200 in P1 and 20 more projects, 1..10 in 200), so 2,000 virtual users are ten sessions
    of each account."""
    accounts = Shape(issues=0).bench_users
    wanted = [first + n for n in range(count)]
    users: list[VirtualUser] = []
    for round_start in range(0, count, accounts):
        batch = wanted[round_start : round_start + accounts]
        cookies = await log_in(app, sorted({index % accounts + 1 for index in batch}))
        for index in batch:
            account = index % accounts + 1
            rng = random.Random(index)
            users.append(VirtualUser(account, projects[account], rng, port, cookies[account]))
    gate = asyncio.Semaphore(16)

    async def learn(user: VirtualUser) -> None:
        # The form token lives in the session cookie; every connection of the user reuses it.
        async with gate:
            browser = Browser(port, user.cookies)
            await browser.learn_csrf("/account/")
            await browser.close()
            user.cookies, user.csrf = dict(browser.cookies), browser.csrf
            user.idle.append(browser)

    await asyncio.gather(*(learn(user) for user in users))
    return users


@dataclass
class Outcome:
    scale: float
    users: int
    seconds: float
    run: Run

    @property
    def p95(self) -> float:
        return at(sorted(self.run.tally.every()), 0.95)

    @property
    def holds(self) -> bool:
        return self.p95 < GOAL_P95_MS and self.run.tally.success() >= GOAL_SUCCESS


async def paced_run(
    users: list[VirtualUser], scale: float, seconds: float, warm_up: float
) -> Outcome:
    start = time.perf_counter() + 0.5
    run = Run(start, start + warm_up, start + warm_up + seconds)
    await asyncio.gather(*(pace(run, user) for user in users))
    return Outcome(scale, len(users), seconds, run)


def summary(outcome: Outcome) -> str:
    run, tally = outcome.run, outcome.run.tally
    every = sorted(tally.every())
    lags = sorted(run.lags)
    offered_hour = run.offered / outcome.seconds * 3600
    achieved_hour = run.answered / outcome.seconds * 3600
    lines = [
        f"Offered: {run.offered} steps due in {outcome.seconds:g} s, {offered_hour:,.0f} an hour "
        f"({run.offered / outcome.seconds:.1f}/s; the profile's {outcome.scale:g} x "
        f"{TOOLKIT_ACTIONS_PER_HOUR:,} = {outcome.scale * TOOLKIT_ACTIONS_PER_HOUR:,.0f}). "
        f"Achieved: {run.answered} answered in time, {achieved_hour:,.0f} an hour "
        f"({run.answered / outcome.seconds:.1f}/s); {len(every)} sent in all "
        "(second steps of actions whose first failed are not sent).",
        f"Client lag from due time to send: p50 {at(lags, 0.5):.1f} ms, p99 {at(lags, 0.99):.1f} "
        f"ms, max {at(lags, 1.0):.1f} ms (a step waits for the step before it in its action; "
        f"a large lag also means the load generator fell behind). At most {run.peak_in_flight} "
        "requests in flight at once.",
        f"Successful: {tally.success():.3%} of {len(every)} requests; p95 {at(every, 0.95):.1f} "
        f"ms, p99 {at(every, 0.99):.1f} ms. {outcome.users} users "
        f"{'held' if outcome.holds else 'not held'} (p95 under {GOAL_P95_MS:g} ms and "
        f"{GOAL_SUCCESS:.1%} successful).",
    ]
    if outcome.scale == 1:
        met = at(every, 0.95) < GOAL_P95_AT_ONE_MS
        lines.append(
            f"Goal at 1x (p95 under {GOAL_P95_AT_ONE_MS:g} ms): {'met' if met else 'missed'}."
        )
    if outcome.scale >= 10:
        lines.append(
            f"Goal at 10x (p95 under {GOAL_P95_MS:g} ms, {GOAL_SUCCESS:.1%} successful): "
            f"{'met' if outcome.holds else 'missed'}."
        )
    return "\n".join(lines)


async def jira_dc(arguments: argparse.Namespace, app: Quart, environment: dict[str, str]) -> None:
    base_users = arguments.users
    scales = [arguments.scale]
    if arguments.find_capacity:
        scales = arguments.capacity_scales
    accounts = Shape(issues=0).bench_users
    projects = await member_projects(app, list(range(1, accounts + 1)))
    workers = arguments.workers[0]
    server = await start_server(APP_TARGET, workers, environment)
    backend = app.extensions["database"].backend
    outcomes: list[Outcome] = []
    users: list[VirtualUser] = []
    try:
        await asyncio.sleep(1)
        for scale in scales:
            wanted = round(base_users * scale)
            if wanted > len(users):
                users += await enlist(app, server.port, projects, len(users), wanted - len(users))
            outcome = await paced_run(users[:wanted], scale, arguments.duration, arguments.warm_up)
            outcomes.append(outcome)
            print(
                f"  scale {scale:g}: {wanted} users, p95 {outcome.p95:.1f} ms, successful "
                f"{outcome.run.tally.success():.3%}, {'held' if outcome.holds else 'not held'}",
                file=sys.stderr,
            )
            if not outcome.holds and arguments.find_capacity:
                break
            await asyncio.sleep(2)  # the server's queues drain between steps
    finally:
        stop_server(server)

    print(
        f"Jira DC profile (dc-app-performance-toolkit): {base_users} users x scale, one step every "
        f"{PACE:.2f} s per user (open-loop schedule), {arguments.duration:g} s per run after "
        f"{arguments.warm_up:g} s of warm-up at the same rate, "
        f"{workers} worker(s), {backend}; latency from each step's due time.\n"
    )
    if arguments.find_capacity:
        print(
            "| scale | users | offered / h | achieved / h | requests | successful "
            "| p50 ms | p95 ms | p99 ms | held |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|")
        for outcome in outcomes:
            run, every = outcome.run, sorted(outcome.run.tally.every())
            hour = 3600 / outcome.seconds
            print(
                f"| {outcome.scale:g} | {outcome.users} | {run.offered * hour:,.0f} "
                f"| {run.answered * hour:,.0f} | {len(every)} "
                f"| {run.tally.success():.3%} | {at(every, 0.5):.1f} | {at(every, 0.95):.1f} "
                f"| {at(every, 0.99):.1f} | {'yes' if outcome.holds else 'no'} |"
            )
        held = [outcome for outcome in outcomes if outcome.holds]
        print(
            f"\nCapacity: {held[-1].users} users ({held[-1].scale:g} x the toolkit's profile) held "
            f"with p95 under {GOAL_P95_MS:g} ms and {GOAL_SUCCESS:.1%} successful."
            if held
            else f"\nCapacity: not even {outcomes[0].users} users held."
        )
        print(f"\nPer action at scale {outcomes[-1].scale:g} (the last step):\n")
    last = outcomes[-1]
    print(action_table(last.run.tally, ACTION_PAGES))
    print()
    print(summary(last))
