"""The home page, the health checks (/healthz: alive, /readyz: ready for traffic) and the
Prometheus scrape (/metrics)."""

from __future__ import annotations

import asyncio

from quart import Blueprint, Response, abort, current_app, jsonify, render_template

from app.blueprints.guards import client_address, current_account
from app.db import get_session
from app.services import operations, search
from app.web import metrics

bp = Blueprint("main", __name__)


@bp.get("/")
async def index() -> str:
    viewer = current_account()
    assigned = []
    if viewer is not None:
        page = await search.search_issues(
            get_session(), viewer, "assignee:me is:open sort:updated-desc", limit=10, rows_only=True
        )
        assigned = page.issues
    return await render_template("main/index.html", assigned=assigned)


@bp.get("/healthz")
async def healthz() -> Response:
    """The process is alive and serving: nothing else is asked, so it answers during outages."""
    return jsonify(status="ok")


@bp.get("/readyz")
async def readyz() -> tuple[Response, int]:
    """200 when this worker can serve: the database answers, its schema is current, and the
    live listener is connected (PostgreSQL); 503 with what is wrong otherwise."""
    report = await current_app.extensions["readiness"].report(
        current_app.extensions.get("live_listener")
    )
    return jsonify(report), 200 if report["status"] == "ready" else 503


@bp.get("/metrics")
async def scrape() -> Response:
    """Every worker's counts and the delivery queues, for Prometheus; a 404 to clients outside
    METRICS_ALLOW (the console is not advertised)."""
    if not metrics.allowed(current_app.config["METRICS_ALLOW_NETWORKS"], client_address()):
        abort(404)
    depths = await operations.queue_depths(get_session())
    directory = current_app.extensions["metrics"].directory
    # Reads one small file per worker and metric kind: off the event loop.
    body = await asyncio.to_thread(metrics.exposition, directory, depths)
    return Response(body, content_type=metrics.CONTENT_TYPE)
