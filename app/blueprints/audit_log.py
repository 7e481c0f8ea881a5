"""The admins' audit log: search by person, action, dates and address; export what was found."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from quart import Blueprint, Response, current_app, render_template, request

from app.blueprints.guards import admin_required
from app.blueprints.security_log import page_cursor
from app.db import get_session, utcnow
from app.errors import Invalid
from app.services import audit_views
from app.services.audit import AuditAction

bp = Blueprint("audit_log", __name__, url_prefix="/admin/audit")


def _search() -> audit_views.AuditSearch:
    return audit_views.parse_search(request.args, request.args.getlist("action"))


@bp.get("")  # no trailing slash: a redirect would tell outsiders the page exists
@admin_required
async def index() -> tuple[str, int]:
    errors: dict[str, str] = {}
    page = audit_views.AuditPage([], None)
    search = audit_views.AuditSearch()
    try:
        search = _search()
    except Invalid as refusal:
        errors = refusal.field_errors
    else:
        page = await audit_views.search_events(get_session(), search, before_id=page_cursor())
    body = await render_template(
        "audit/admin.html",
        page=page,
        search=search,
        errors=errors,
        args=request.args,
        actions=list(AuditAction),
        prefixes=audit_views.ACTION_PREFIXES,
        now=utcnow(),
        describe=audit_views.describe_event,
        ago=audit_views.ago,
    )
    return body, 400 if errors else 200


def _export(
    export: Callable[..., AsyncIterator[str]], mimetype: str, extension: str
) -> Response | tuple[str, int]:
    search = _search()
    # Its own session: the body is streamed after the request's session has closed.
    sessionmaker = current_app.extensions["database"].sessionmaker

    async def chunks() -> AsyncIterator[bytes]:
        async with sessionmaker() as session:
            async for chunk in export(session, search):
                yield chunk.encode()

    stamp = utcnow().strftime("%Y%m%d-%H%M%S")
    response = Response(chunks(), mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="audit-{stamp}.{extension}"'
    response.timeout = None  # a large export outlasts the response timeout
    return response


@bp.get("/export.csv")
@admin_required
async def export_csv() -> Response | tuple[str, int]:
    return _export(audit_views.export_csv, "text/csv", "csv")


@bp.get("/export.jsonl")
@admin_required
async def export_json_lines() -> Response | tuple[str, int]:
    return _export(audit_views.export_json_lines, "application/jsonl", "jsonl")
