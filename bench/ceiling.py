"""The stack's own ceiling: a minimal Quart app that renders a 100-row template from a list.

bench.load serves it with the same hypercorn settings as the tracker, in the same run, so that
every page's throughput is also a ratio to what Quart, Jinja and hypercorn manage with no
database, no login and no middleware.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from quart import Quart, render_template

STARTED = datetime(2026, 1, 1, tzinfo=UTC)
# Shaped like a page of the issue list: key, title, status, priority, assignee, labels, date.
ROWS = [
    {
        "key": f"WEB-{n}",
        "title": f"Export of report {n} fails after the session times out",
        "status": ("To do", "In progress", "Done")[n % 3],
        "priority": ("urgent", "high", "medium", "low", "none")[n % 5],
        "assignee": f"User {n % 17}",
        "labels": ("bug", "backend") if n % 2 else ("ui",),
        "updated_at": STARTED + timedelta(hours=n),
    }
    for n in range(1, 101)
]


def create_app() -> Quart:
    app = Quart(__name__, template_folder="templates")

    @app.get("/")
    async def rows() -> str:
        return await render_template("ceiling.html", rows=ROWS)

    return app
