"""The caller: who the token or session belongs to, and their account's security log."""

from __future__ import annotations

from quart import Blueprint
from quart_schema import document_response, validate_querystring

from app.api.auth import acting_user, current_token
from app.api.pagination import after_id, id_cursor, link_header, next_link
from app.api.schemas import AuditEventList, MeOut, PageArgs, audit_event_out, me_out
from app.db import get_session
from app.services import audit_views

bp = Blueprint("me", __name__)


@bp.get("/me")
@document_response(MeOut, 200)
async def show_me() -> MeOut:
    """The caller's account, and how they authenticated."""
    return me_out(acting_user(), current_token())


@bp.get("/me/audit")
@validate_querystring(PageArgs)
@document_response(AuditEventList, 200)
async def my_audit_events(
    query_args: PageArgs,
) -> tuple[AuditEventList, int, dict[str, str]]:
    """The security events of the caller's account (sign-ins, failures, changes), newest
    first. `next` (and the Link header) is the next, older page."""
    user = acting_user()
    page = await audit_views.own_events(
        get_session(),
        user.id,
        before_id=after_id(query_args.after) or None,
        limit=query_args.limit,
    )
    next_url = next_link(after=id_cursor(page.next_before)) if page.next_before else None
    body = AuditEventList(
        items=[audit_event_out(e, audit_views.describe_event(e, user)) for e in page.events],
        next=next_url,
    )
    return body, 200, link_header(next_url)
