"""Where a page's time goes: requests in process, timed and profiled, against the ceiling route.

No server and no sockets: each page is asked of the app through Quart's test client, one request
at a time, as one logged-in bench user (the same pages as bench.load). It prints, per page, the
wall and CPU milliseconds per request of this process (the database server's own time is not in
the CPU column), and the same of bench.ceiling's route, so that the cost of a page can be read as
a multiple of the stack's ceiling before any load is put on it. With --profile NAME it prints
pyinstrument's tree of that page's requests (with --after-change, the changes' too). With --cold
every request renders everything again, nothing kept (the board's cards stay cached); with
--after-change a real change to the page's project (issue 1's priority, through the service)
comes before every request, untimed: the first view after a change on a live board, where what
the change leaves valid (the sidebar, other projects' parts) is still served kept.

    .venv/bin/python -m bench.profile --database-url postgresql://postgres@127.0.0.1/issues_bench
"""

from __future__ import annotations

import argparse
import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import quote

from quart import Quart
from sqlalchemy import text

from app import create_app
from app.models import User
from app.services import issues
from bench import ceiling
from bench.data import normalise_database_url
from bench.load import World, discover, mix_cards
from bench.serving import log_in
from tests.pages import csrf_token


@dataclass
class Timing:
    name: str
    requests: int
    wall_ms: float
    cpu_ms: float
    status: int
    size: int


Change = Callable[[str], Awaitable[None]]


async def time_page(
    app: Quart,
    name: str,
    paths: list[str],
    cookies: dict[str, str],
    runs: int,
    *,
    cold: bool,
    change: Change | None = None,
) -> Timing:
    """Ask for `paths` in turn. `cold` forgets every kept part before each request; `change`
    makes a real change to the page's project before it (not timed), so that what a change
    leaves valid (the sidebar, say) is still served kept, as after a change on a live board."""
    client = app.test_client()
    for cookie, value in cookies.items():
        client.set_cookie("127.0.0.1", cookie, value)
    for path in paths[:3]:  # warm-up: caches, pool, templates
        await client.get(path)
    status, size = 0, 0
    wall = cpu = 0.0
    kept = app.extensions.get("page_cache")
    for n in range(runs):
        path = paths[n % len(paths)]
        if cold and kept is not None:
            kept.clear()  # every view as the first one, with nothing kept at all
        if change is not None:
            await change(path)
        started, started_cpu = time.perf_counter(), time.process_time()
        response = await client.get(path)
        status, size = response.status_code, len(await response.get_data())
        wall += time.perf_counter() - started
        cpu += time.process_time() - started_cpu
    return Timing(name, runs, wall * 1000 / runs, cpu * 1000 / runs, status, size)


def changer(app: Quart, world: World, editor_id: int) -> Change:
    """A change in the project a path shows (search: in one of the viewer's projects): issue 1
    of that project gets another priority, through the service, as a person would."""
    priorities = ("low", "medium")
    toggles: dict[str, int] = {}
    project_of_path = re.compile(r"^/(?:p/)?([A-Z][A-Z0-9]*)")

    async def change(path: str) -> None:
        found = project_of_path.match(path)
        key = found.group(1) if found and not path.startswith("/search") else world.list_key
        async with app.extensions["database"].sessionmaker() as session:
            editor = await session.get_one(User, editor_id)
            issue_id = await session.scalar(
                text(
                    "SELECT issue.id FROM issue JOIN project ON project.id = issue.project_id "
                    "WHERE project.key = :key AND issue.number = 1"
                ),
                {"key": key},
            )
            toggles[key] = 1 - toggles.get(key, 0)
            changes = issues.IssueChanges(priority=priorities[toggles[key]])
            await issues.update_issue(session, editor, issue_id, changes, expected_version=None)

    return change


async def time_writes(app: Quart, world: World, cookies: dict[str, str], runs: int) -> Timing:
    """bench.load's write scenario in process: create an issue, move a card, add a comment,
    in turn, in the writes' own small project."""
    client = app.test_client()
    for cookie, value in cookies.items():
        client.set_cookie("127.0.0.1", cookie, value)
    token = await csrf_token(client)
    statuses, (card, *_) = await mix_cards(app, world, 1)
    version, column = card.version, statuses.index(card.status_id)

    async def write(n: int) -> int:
        nonlocal version, column
        if n % 3 == 0:
            form = {"title": f"Profiled issue {n}", "description": "Made by bench.profile."}
            answer = await client.post(
                f"/p/{world.mix_key}/issues/new", form={**form, "csrf_token": token}
            )
        elif n % 3 == 1:
            column = (column + 1) % len(statuses)
            answer = await client.post(
                f"/p/{world.mix_key}/board/moves",
                form={
                    "issue": card.id,
                    "status": statuses[column],
                    "version": version,
                    "csrf_token": token,
                },
                headers={"Accept": "application/json"},
            )
            version = (await answer.get_json())["version"]
        else:
            answer = await client.post(
                f"/{world.mix_key}-{card.number}/comments",
                form={"body": f"Comment {n} from bench.profile.", "csrf_token": token},
            )
        return answer.status_code

    for n in range(3):  # warm-up
        await write(n)
    statuses_seen = set()
    wall, cpu = time.perf_counter(), time.process_time()
    for n in range(runs):
        statuses_seen.add(await write(n))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    status = max(statuses_seen)  # 302 for the forms, 200 for moves: an error shows as 4xx/5xx
    return Timing("write", runs, wall * 1000 / runs, cpu * 1000 / runs, status, 0)


async def main(arguments: argparse.Namespace) -> None:
    url = normalise_database_url(arguments.database_url)
    app = create_app("testing", DATABASE_URL=url, RATE_LIMIT_ENABLED=False)
    ceiling_app = ceiling.create_app()
    async with app.test_app(), ceiling_app.test_app():
        world = await discover(app, 1)
        cookies = (await log_in(app, [1]))[1]
        pages = {
            "ceiling": [],
            "board": [f"/p/{world.board_key}/board"],
            "issue": [f"/{key}" for key in world.issue_keys],
            "list": [f"/p/{world.list_key}?q={quote(arguments.list_query)}"],
            "search": [f"/search?q={quote(arguments.search_query)}"],
            "write": [],  # bench.load's writes, in process (opt in: --pages ...,write)
        }
        chosen = [name for name in pages if name in arguments.pages]
        timings = []
        profiler = None
        for name in chosen:
            target, paths = (ceiling_app, ["/"]) if name == "ceiling" else (app, pages.get(name))
            if name == arguments.profile:
                from pyinstrument import Profiler

                profiler = Profiler(interval=0.0005, async_mode="disabled")
                profiler.start()
            if name == "write":
                timing = await time_writes(app, world, cookies, arguments.runs)
            else:
                change = (
                    changer(app, world, 1) if arguments.after_change and name != "ceiling" else None
                )
                timing = await time_page(
                    target, name, paths, cookies, arguments.runs, cold=arguments.cold, change=change
                )
            timings.append(timing)
            if name == arguments.profile and profiler is not None:
                profiler.stop()
        base = next((t.cpu_ms for t in timings if t.name == "ceiling"), None)
        print("| page | requests | status | KiB | wall ms/req | CPU ms/req | CPU x ceiling |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for t in timings:
            ratio = f"{t.cpu_ms / base:.2f}" if base else "-"
            print(
                f"| {t.name} | {t.requests} | {t.status} | {t.size / 1024:.1f} | "
                f"{t.wall_ms:.2f} | {t.cpu_ms:.2f} | {ratio} |"
            )
        if profiler is not None:
            print(profiler.output_text(unicode=True, color=False, show_all=False))
    await app.extensions["database"].dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True, help="a database filled by bench.data")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument(
        "--pages", type=lambda text: text.split(","), default="ceiling,board,issue,list,search"
    )
    parser.add_argument("--profile", default="", help="a page to profile with pyinstrument")
    parser.add_argument(
        "--cold", action="store_true", help="forget kept page parts before every request"
    )
    parser.add_argument(
        "--after-change",
        action="store_true",
        help="before every request, change an issue of the page's project (not timed)",
    )
    parser.add_argument("--list-query", default="is:open sort:updated-desc")
    parser.add_argument("--search-query", default="webhook")
    asyncio.run(main(parser.parse_args()))
