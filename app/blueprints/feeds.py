"""Atom feeds (decision 0027): a project's activity and a saved search, for feed readers, and
the account page where a person turns their feed links on, renews or turns them off."""

from __future__ import annotations

from quart import (
    Blueprint,
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.exceptions import NotFound as HTTPNotFound

from app.blueprints.guards import current_account, logged_in_user, login_required, request_origin
from app.db import get_session
from app.errors import NotFound
from app.models import User
from app.services import feeds, projects, search

bp = Blueprint("feeds", __name__)

ATOM = "application/atom+xml; charset=utf-8"


async def _reader() -> User | None:
    """Who the feed is read as: the person a `token` speaks for (a feed reader), else whoever is
    logged in (a browser), else nobody (public projects only)."""
    token = request.args.get("token")
    if token is None:
        return current_account()
    try:
        return await feeds.reader_of(get_session(), current_app.config["SECRET_KEY"], token)
    except NotFound as refusal:
        raise HTTPNotFound(refusal.message) from refusal


async def _atom(feed: feeds.Feed) -> Response:
    base_url = current_app.config["BASE_URL"].rstrip("/")
    body = await render_template("feeds/atom.xml", feed=feed, base_url=base_url)
    # A token in the URL makes the feed personal: no shared cache may keep it.
    return Response(body, content_type=ATOM, headers={"Cache-Control": "private, max-age=60"})


@bp.get("/p/<project_key:key>/activity.atom")
async def project_activity(key: str) -> Response:
    try:
        feed = await feeds.project_activity(get_session(), await _reader(), key)
    except NotFound as refusal:
        raise HTTPNotFound(refusal.message) from refusal
    return await _atom(feed)


@bp.get("/searches/<int(max=2147483647):saved_search_id>.atom")
async def saved_search(saved_search_id: int) -> Response:
    viewer = await _reader()
    if viewer is None:
        raise HTTPNotFound("No such feed.")
    try:
        feed = await feeds.saved_search(get_session(), viewer, saved_search_id)
    except NotFound as refusal:
        raise HTTPNotFound(refusal.message) from refusal
    return await _atom(feed)


@bp.get("/account/feeds")
@login_required
async def settings() -> str:
    session, user = get_session(), logged_in_user()
    return await render_template(
        "feeds/settings.html",
        token=await feeds.feed_token(session, current_app.config["SECRET_KEY"], user),
        projects=await projects.visible_projects(session, user),
        saved=await search.list_saved_searches(session, user),
        base_url=current_app.config["BASE_URL"].rstrip("/"),
    )


@bp.post("/account/feeds")
@login_required
async def new_token() -> Response:
    await feeds.new_feed_token(get_session(), logged_in_user(), request_origin())
    await flash("Your feed links have a new token: feed URLs you copied before no longer work.")
    return redirect(url_for("feeds.settings"))


@bp.post("/account/feeds/off")
@login_required
async def turn_off() -> Response:
    await feeds.turn_off_feed_links(get_session(), logged_in_user(), request_origin())
    await flash("Feed links are off: private projects' feeds no longer open.")
    return redirect(url_for("feeds.settings"))
