"""The board's weight by project size: HTML per first view, cards shown, and CPU per cold view.

Like bench.profile, in process through Quart's test client as bench user 1, beside bench.ceiling's
route; for the readable projects closest to each --sizes issue count (and the largest one) it
prints the board's KiB and cards, the KiB of a column's next page of cards (what scrolling
loads), and the wall and CPU milliseconds of a view whose kept page part was forgotten (the
first view after a change; the cards' HTML stays cached, as it does on a running server).

    .venv/bin/python -m bench.boards --database-url postgresql://postgres@127.0.0.1/issues_bench
"""

from __future__ import annotations

import argparse
import asyncio
import html
import re

from quart import Quart
from sqlalchemy import text

from app import create_app
from bench import ceiling
from bench.data import normalise_database_url
from bench.profile import time_page
from bench.serving import log_in

CARD = re.compile(r'class="card board-card"')
MORE = re.compile(r'data-more-cards href="([^"]+)"')


async def projects_near(app: Quart, viewer_id: int, sizes: list[int]) -> list[tuple[str, int]]:
    """(key, issues) of the viewer's readable projects nearest each size, and the largest."""
    async with app.extensions["database"].sessionmaker() as session:
        rows = (
            await session.execute(
                text(
                    "SELECT p.key, p.last_issue_number FROM project p JOIN membership m "
                    "ON m.project_id = p.id AND m.user_id = :viewer"
                ),
                {"viewer": viewer_id},
            )
        ).all()
    chosen = [min(rows, key=lambda row, size=size: abs(row[1] - size)) for size in sizes]
    chosen.append(max(rows, key=lambda row: row[1]))
    return list(dict.fromkeys((key, issues) for key, issues in chosen))


async def main(arguments: argparse.Namespace) -> None:
    url = normalise_database_url(arguments.database_url)
    app = create_app("testing", DATABASE_URL=url, RATE_LIMIT_ENABLED=False)
    ceiling_app = ceiling.create_app()
    async with app.test_app(), ceiling_app.test_app():
        cookies = (await log_in(app, [1]))[1]
        base = await time_page(ceiling_app, "ceiling", ["/"], cookies, arguments.runs, cold=False)
        print(f"ceiling: {base.size / 1024:.1f} KiB, CPU {base.cpu_ms:.2f} ms/req")
        print(
            "| project | issues | board KiB | cards | next page KiB | wall ms | CPU ms | x ceil |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        client = app.test_client()
        for cookie, value in cookies.items():
            client.set_cookie("127.0.0.1", cookie, value)
        for key, issues in await projects_near(app, 1, arguments.sizes):
            path = f"/p/{key}/board"
            page = await (await client.get(path)).get_data(as_text=True)
            found = MORE.search(page)
            more = ""
            if found:
                answer = await client.get(html.unescape(found[1]), headers={"HX-Request": "true"})
                more = f"{len(await answer.get_data()) / 1024:.1f}"
            cold = await time_page(app, "board", [path], cookies, arguments.runs, cold=True)
            print(
                f"| {key} | {issues} | {cold.size / 1024:.1f} | {len(CARD.findall(page))} | "
                f"{more or '-'} | {cold.wall_ms:.2f} | {cold.cpu_ms:.2f} | "
                f"{cold.cpu_ms / base.cpu_ms:.2f} |"
            )
    await app.extensions["database"].dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True, help="a database filled by bench.data")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument(
        "--sizes", type=lambda text: [int(n) for n in text.split(",")], default=[500, 1000]
    )
    asyncio.run(main(parser.parse_args()))
