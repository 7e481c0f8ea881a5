"""A person's own security log: what was done with their account, and from where."""

from __future__ import annotations

from quart import Blueprint, render_template, request

from app.blueprints.guards import current_account, login_required
from app.db import get_session, utcnow
from app.services import audit_views

bp = Blueprint("security_log", __name__, url_prefix="/account/security-log")
LARGEST_EVENT_ID = 2**63 - 1  # audit_event.id is a BIGINT


def page_cursor() -> int | None:
    """The `before` id of a page link; a garbled or out-of-range one means the first page."""
    before = request.args.get("before", type=int)
    return before if before is not None and 0 < before <= LARGEST_EVENT_ID else None


@bp.get("")  # no trailing slash: a redirect would tell outsiders the page exists
@login_required
async def index() -> str:
    user = current_account()
    assert user is not None  # login_required ran
    page = await audit_views.own_events(get_session(), user.id, before_id=page_cursor())
    return await render_template(
        "audit/security_log.html",
        page=page,
        user=user,
        now=utcnow(),
        describe=audit_views.describe_event,
        ago=audit_views.ago,
    )
