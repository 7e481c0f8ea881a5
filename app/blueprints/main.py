"""The home page and the health check."""

from __future__ import annotations

import asyncio

from quart import Blueprint, Response, current_app, jsonify, render_template
from sqlalchemy import text

from app.blueprints.guards import current_account
from app.db import get_database, get_session
from app.services import search

bp = Blueprint("main", __name__)

HEALTH_CHECK_TIMEOUT = 3.0


@bp.get("/")
async def index() -> str:
    viewer = current_account()
    assigned = []
    if viewer is not None:
        page = await search.search_issues(
            get_session(), viewer, "assignee:me is:open sort:updated-desc", limit=10
        )
        assigned = page.issues
    return await render_template("main/index.html", assigned=assigned)


@bp.get("/healthz")
async def healthz() -> tuple[Response, int]:
    """200 when the database answers a trivial query in time, 503 otherwise."""
    database = get_database()
    try:
        async with asyncio.timeout(HEALTH_CHECK_TIMEOUT):
            async with database.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
    except Exception as error:  # any failure to reach the database is "unavailable"
        current_app.logger.warning("health check failed: %s", error)
        return jsonify(status="unavailable", database="unreachable"), 503
    return jsonify(status="ok", database=database.backend), 200
