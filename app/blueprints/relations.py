"""Sub-issues and relations on the issue page: a sub-issue made in one step, relations added and
removed (the page shows them: templates/issues/_relations.html)."""

from __future__ import annotations

from quart import Blueprint, Response, flash, redirect, request, url_for

from app.blueprints.guards import logged_in_user, login_required
from app.db import get_session
from app.errors import Invalid, NotFound
from app.services import issue_views, issues, relations
from app.services.access import writable_project

bp = Blueprint("relations", __name__)


@bp.post("/<issue_key:key>/sub-issues")
@login_required
async def add_sub_issue(key: str) -> Response:
    """A new issue of the same project, with this one as its parent: from the title alone."""
    session = get_session()
    heading = await issue_views.issue_heading(session, logged_in_user(), key)
    # Read before the use case: a refusal's rollback expires the heading's project.
    issue_key, project_id, project_key = heading.key, heading.project.id, heading.project.key
    await writable_project(session, logged_in_user(), project_id)
    form = await request.form
    try:
        created = await issues.create_issue(
            session, logged_in_user(), project_id, title=form.get("title", ""), parent=issue_key
        )
    except Invalid as refusal:
        await flash(f"No sub-issue was added: {refusal.message}")
    else:
        await flash(f"Added the sub-issue {project_key}-{created.number}.")
    return redirect(url_for("issues.show", key=issue_key, _anchor="sub-issues"))


@bp.post("/<issue_key:key>/relations")
@login_required
async def add_relation(key: str) -> Response:
    session = get_session()
    heading = await issue_views.issue_heading(session, logged_in_user(), key)
    issue_key = heading.key  # a refusal's rollback expires the heading's project
    form = await request.form
    try:
        await relations.add_relation(
            session,
            logged_in_user(),
            heading.id,
            form.get("type", ""),
            form.get("issue", ""),
            close_duplicate=form.get("close") == "1",
        )
    except Invalid as refusal:
        await flash(f"No relation was added: {refusal.message}")
    return redirect(url_for("issues.show", key=issue_key, _anchor="relations"))


@bp.post("/<issue_key:key>/relations/<int(max=2147483647):relation_id>/delete")
@login_required
async def remove_relation(key: str, relation_id: int) -> Response:
    session = get_session()
    heading = await issue_views.issue_heading(session, logged_in_user(), key)
    issue_key = heading.key
    try:
        await relations.remove_relation(session, logged_in_user(), heading.id, relation_id)
    except NotFound:  # removed meanwhile (a second click, someone else): say so, not a 404
        await flash("That relation was removed already.")
    return redirect(url_for("issues.show", key=issue_key, _anchor="relations"))
