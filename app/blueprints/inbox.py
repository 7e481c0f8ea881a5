"""The inbox: a person's notifications by issue (Unread, All, Done), marked read or done, and
the live unread count for the header (decision 0028)."""

from __future__ import annotations

import logging

from quart import (
    Blueprint,
    Response,
    current_app,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)

from app.blueprints.guards import current_account, current_auth_session, login_required
from app.db import get_session
from app.live.inbox import InboxBroker, InboxStream
from app.live.stream import DATABASE_TROUBLE
from app.models import User
from app.services import inbox

bp = Blueprint("inbox", __name__, url_prefix="/inbox")
log = logging.getLogger("issues.inbox")


def _me() -> User:
    user = current_account()
    assert user is not None  # login_required ran
    return user


def _tab() -> inbox.Tab:
    try:
        return inbox.Tab(request.args.get("tab", inbox.Tab.UNREAD.value))
    except ValueError:
        return inbox.Tab.UNREAD


def _cursor() -> int | None:
    raw = request.args.get("before", "")
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 18 else None


def _is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


@bp.get("/")
@login_required
async def index() -> str:
    tab = _tab()
    page = await inbox.inbox_page(get_session(), _me(), tab, before=_cursor())
    return await render_template("inbox/index.html", tab=tab, page=page, Tab=inbox.Tab)


async def _after_write(tab: str) -> Response | tuple[str, int]:
    """htmx replaces the entry in place (an empty answer removes it); a plain form goes back
    to the tab it came from."""
    if _is_htmx():
        return "", 200
    return redirect(url_for("inbox.index", tab=tab))


@bp.post("/<int:issue_id>/read")
@login_required
async def read(issue_id: int) -> Response | tuple[str, int]:
    form = await request.form
    await inbox.mark_read(get_session(), _me(), issue_id)
    tab = form.get("tab", "unread")
    if _is_htmx() and tab != "unread":
        # Still listed on All: answer the entry as it now stands.
        page = await inbox.inbox_page(get_session(), _me(), inbox.Tab.ALL)
        entry = next((e for e in page.entries if e.issue_id == issue_id), None)
        if entry is not None:
            return await render_template("inbox/_entry.html", entry=entry, tab=tab), 200
    return await _after_write(tab)


@bp.post("/<int:issue_id>/done")
@login_required
async def done(issue_id: int) -> Response | tuple[str, int]:
    form = await request.form
    await inbox.mark_done(get_session(), _me(), issue_id)
    return await _after_write(form.get("tab", "unread"))


@bp.post("/read-all")
@login_required
async def read_all() -> Response:
    await inbox.mark_all_read(get_session(), _me())
    return redirect(url_for("inbox.index", tab=(await request.form).get("tab", "unread")))


@bp.get("/<int:issue_id>")
@login_required
async def open_issue(issue_id: int) -> Response:
    """Opening an issue from the inbox marks its entries read (a read receipt: harmless to
    repeat, and only the person's own rows)."""
    issue = await inbox.entry_issue(get_session(), _me(), issue_id)
    key = issue.key
    await inbox.mark_read(get_session(), _me(), issue_id)
    return redirect(url_for("issues.show", key=key))


@bp.get("/count")
@login_required
async def count() -> dict[str, object]:
    number = await inbox.unread_count(get_session(), _me().id)
    return {"unread": number, "label": inbox.count_label(number)}


@bp.get("/events")
@login_required
async def events() -> Response:
    """The unread count now and whenever it changes (server-sent events)."""
    auth_session = current_auth_session()
    assert auth_session is not None
    broker: InboxBroker = current_app.extensions["inbox_broker"]
    config = current_app.config
    stream = InboxStream(
        broker,
        _me().id,
        auth_session.id,
        heartbeat=config["SSE_HEARTBEAT_SECONDS"],
        retry_ms=config["SSE_RETRY_MILLISECONDS"],
    )
    response = await make_response(
        stream.chunks(),
        {
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
        },
    )
    response.timeout = None
    return response


@bp.app_context_processor
async def header_badge() -> dict[str, object]:
    """`inbox_unread_count()` for the header: a query only where a page shows the badge."""

    async def inbox_unread_count() -> dict[str, object]:
        user, number = current_account(), 0
        if user is not None:
            try:
                number = await inbox.unread_count(get_session(), user.id)
            except DATABASE_TROUBLE:
                # An error page about the database must not fail again here: the live
                # stream sends the real count once the database answers.
                log.warning("inbox: the header's count could not be read")
        return {"count": number, "label": inbox.count_label(number)}

    return {"inbox_unread_count": inbox_unread_count}
