"""Finding issues: My issues, search across projects, CSV export, saved searches, people."""

from __future__ import annotations

from quart import Blueprint, Response, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from app.blueprints.forms import form_text
from app.blueprints.guards import logged_in_user, login_required, safe_next
from app.blueprints.page_cache import cached_part, page_cache, render_part
from app.db import get_session
from app.errors import Forbidden, Invalid, NotFound
from app.models import Project, User
from app.services import issue_views, projects, search

# The search page counts matches up to this many, then says "1,000+".
SEARCH_COUNT_LIMIT = 1000

bp = Blueprint("finding", __name__)

MY_ISSUES_TABS = {
    "assigned": ("Assigned to me", "assignee:me is:open sort:updated-desc"),
    "reported": ("Reported by me", "reporter:me sort:updated-desc"),
    "watching": ("Watching", None),
}


async def _project_for(key: str | None) -> Project | None:
    if not key:
        return None
    return await projects.project_by_key(get_session(), logged_in_user(), key)


@bp.get("/issues")
@login_required
async def my_issues() -> str:
    tab = request.args.get("tab", "assigned")
    if tab not in MY_ISSUES_TABS:
        tab = "assigned"
    session = get_session()
    title, query = MY_ISSUES_TABS[tab]
    if query is None:
        found, next_cursor = await issue_views.watched_issues(session, logged_in_user()), None
    else:
        page = await search.search_issues(
            session, logged_in_user(), query, after=request.args.get("after"), rows_only=True
        )
        found, next_cursor = page.issues, page.next_cursor
    return await render_template(
        "issues/mine.html",
        tabs=MY_ISSUES_TABS,
        tab=tab,
        title=title,
        query=query,
        issues=found,
        next_cursor=next_cursor,
    )


@bp.get("/search")
@login_required
async def search_page() -> tuple[str, int]:
    session = get_session()
    viewer = logged_in_user()
    query_text = request.args.get("q", "")
    project = await _project_for(request.args.get("project"))
    error: str | None = None

    async def render_results() -> str:
        nonlocal error
        found, next_cursor, total = [], None, 0
        if query_text.strip():
            try:
                page = await search.search_issues(
                    session,
                    viewer,
                    query_text,
                    project=project,
                    after=request.args.get("after"),
                    rows_only=True,
                )
                found, next_cursor = page.issues, page.next_cursor
                total = await search.count_issues(
                    session, viewer, page.query, project=project, up_to=SEARCH_COUNT_LIMIT
                )
            except Invalid as refusal:
                error = refusal.message
        return await render_part(
            "issues/_search.html",
            q=query_text,
            project=project,
            issues=found,
            total=total,
            total_limit=SEARCH_COUNT_LIMIT,
            next_cursor=next_cursor,
            query_error=error,
        )

    # Results across projects are as current as every project the viewer reads (decision 0012).
    state = await projects.readable_state(session, viewer)
    arguments = tuple(request.args.items(multi=True))
    key = ("search", state, viewer.id, viewer.display_name, arguments)
    results = await cached_part(key, render_results)
    if error is not None:
        page_cache().forget(key)  # a refused query is answered 400 every time
    page_html = await render_template(
        "issues/search.html",
        body=results,
        saved=await search.list_saved_searches(session, viewer),
    )
    return page_html, (400 if error else 200)


@bp.get("/search.csv")
@login_required
async def export() -> Response:
    query_text = request.args.get("q", "")
    project = await _project_for(request.args.get("project"))
    body = await search.export_csv(get_session(), logged_in_user(), query_text, project=project)
    name = f"issues-{project.key if project else 'search'}.csv"
    return Response(
        body,
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@bp.post("/searches")
@login_required
async def save_search() -> Response:
    form = await request.form
    try:
        await search.save_search(
            get_session(),
            logged_in_user(),
            name=form_text(form, "name"),
            query=form_text(form, "q"),
        )
    except (Invalid, Forbidden) as refusal:
        await flash(refusal.message)
    else:
        await flash("Search saved: find it in the sidebar.")
    return redirect(url_for("finding.search_page", q=form.get("q", "")))


@bp.post("/searches/<int(max=2147483647):saved_search_id>/delete")
@login_required
async def delete_search(saved_search_id: int) -> Response:
    await search.delete_saved_search(get_session(), logged_in_user(), saved_search_id)
    await flash("Saved search removed.")
    return redirect(safe_next((await request.form).get("next")))


@bp.get("/u/<handle>")
@login_required
async def person(handle: str) -> str:
    session = get_session()
    user = await session.scalar(select(User).where(User.handle == handle.lower()))
    if user is None:
        raise NotFound("No such person.")
    page = await search.search_issues(
        session,
        logged_in_user(),
        f"assignee:{user.handle} is:open",
        after=request.args.get("after"),
        rows_only=True,
    )
    return await render_template(
        "people/show.html", person=user, issues=page.issues, next_cursor=page.next_cursor
    )
