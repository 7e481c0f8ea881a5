"""Where a page's time goes: requests in process, timed and profiled, against the ceiling route.

No server and no sockets: each page is asked of the app through Quart's test client, one request
at a time, as one logged-in bench user (the same pages as bench.load). It prints, per page, the
wall and CPU milliseconds per request of this process (the database server's own time is not in
the CPU column), and the same of bench.ceiling's route, so that the cost of a page can be read as
a multiple of the stack's ceiling before any load is put on it. With --profile NAME it prints
pyinstrument's tree of that page's requests; with --cold every request renders its page part
again, as the first view after a change does (the board's cards stay cached).

    .venv/bin/python -m bench.profile --database-url postgresql://postgres@127.0.0.1/issues_bench
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass
from urllib.parse import quote

from quart import Quart
from sqlalchemy import text

from app import create_app
from bench import ceiling
from bench.data import normalise_database_url
from bench.load import World, discover
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


async def time_page(
    app: Quart, name: str, paths: list[str], cookies: dict[str, str], runs: int, *, cold: bool
) -> Timing:
    client = app.test_client()
    for cookie, value in cookies.items():
        client.set_cookie("127.0.0.1", cookie, value)
    for path in paths[:3]:  # warm-up: caches, pool, templates
        await client.get(path)
    status, size = 0, 0
    wall, cpu = time.perf_counter(), time.process_time()
    kept = app.extensions.get("page_cache")
    for n in range(runs):
        if cold and kept is not None:
            kept.clear()  # every view as the first one since the project changed
        response = await client.get(paths[n % len(paths)])
        status, size = response.status_code, len(await response.get_data())
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return Timing(name, runs, wall * 1000 / runs, cpu * 1000 / runs, status, size)


async def time_writes(app: Quart, world: World, cookies: dict[str, str], runs: int) -> Timing:
    """bench.load's write scenario in process: create an issue, move a card, add a comment,
    in turn, in the writes' own small project."""
    client = app.test_client()
    for cookie, value in cookies.items():
        client.set_cookie("127.0.0.1", cookie, value)
    token = await csrf_token(client)
    async with app.extensions["database"].sessionmaker() as session:
        statuses = list(
            await session.scalars(
                text("SELECT id FROM workflow_status WHERE project_id = :p ORDER BY position"),
                {"p": world.mix_project_id},
            )
        )
        card = (
            await session.execute(
                text(
                    "SELECT id, number, version, status_id FROM issue WHERE project_id = :p "
                    "ORDER BY id LIMIT 1"
                ),
                {"p": world.mix_project_id},
            )
        ).one()
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
                timing = await time_page(
                    target, name, paths, cookies, arguments.runs, cold=arguments.cold
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
    parser.add_argument("--list-query", default="is:open sort:updated-desc")
    parser.add_argument("--search-query", default="webhook")
    asyncio.run(main(parser.parse_args()))
