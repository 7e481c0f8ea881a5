"""Milestones: a project's list and roadmap, a milestone's page with its burn-up chart, editing,
closing (asking where the open issues go) and reopening."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from itertools import groupby

from quart import Blueprint, Response, flash, redirect, render_template, request, url_for
from werkzeug.datastructures import MultiDict

from app.blueprints.forms import read_form
from app.blueprints.guards import current_account, logged_in_user, login_required
from app.db import get_session, utcnow
from app.errors import Forbidden, Invalid
from app.models import LARGEST_ID, Project
from app.services import milestone_progress, milestones, projects
from app.services.access import may_write, writable_project
from app.services.inputs import MilestoneClose, MilestoneCreate, MilestoneUpdate

bp = Blueprint("milestones", __name__)

Page = str | Response | tuple[str, int]
ID = f"int(max={LARGEST_ID})"


def _may_write(project_id: int) -> Callable[[], Awaitable[object]]:
    """The check a refused form waits for: only writers hear what is wrong with their input."""
    return lambda: writable_project(get_session(), logged_in_user(), project_id)


async def _project(key: str) -> tuple[Project, bool]:
    session = get_session()
    project = await projects.project_by_key(session, logged_in_user(), key)
    return project, await may_write(session, current_account(), project)


# --- The project's milestones and roadmap -----------------------------------------------------


async def _list_page(
    project: Project,
    writable: bool,
    form: MultiDict | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> tuple[str, int]:
    found = await milestones.summaries(get_session(), logged_in_user(), project.id)
    page = await render_template(
        "milestones/index.html",
        project=project,
        summaries=found,
        can_write=writable,
        form=form or MultiDict(),
        errors=errors or {},
    )
    return page, status


@bp.get("/p/<project_key:key>/milestones")
@login_required
async def index(key: str) -> Page:
    project, writable = await _project(key)
    return await _list_page(project, writable)


@bp.post("/p/<project_key:key>/milestones")
@login_required
async def create(key: str) -> Page:
    project, writable = await _project(key)
    project_id, project_key = project.id, project.key  # a refusal's rollback expires project
    form = await request.form
    try:
        data = await read_form(MilestoneCreate, form, authorise=_may_write(project_id))
        made = await milestones.create_milestone(
            get_session(), logged_in_user(), project_id, **data.model_dump()
        )
    except Invalid as refusal:
        fresh, writable = await _project(key)
        errors = refusal.field_errors or {"form": refusal.message}
        return await _list_page(fresh, writable, form, errors, refusal.status)
    await flash(f"Milestone {made.title} is ready: plan issues into it from their pages.")
    return redirect(url_for("milestones.show", key=project_key, milestone_id=made.id))


@bp.get("/p/<project_key:key>/roadmap")
@login_required
async def roadmap(key: str) -> Page:
    """The open milestones along time, month by month of their due dates, with progress."""
    project, _ = await _project(key)
    found = [
        summary
        for summary in await milestones.summaries(get_session(), logged_in_user(), project.id)
        if summary.milestone.is_open
    ]

    def month(summary: milestones.MilestoneSummary) -> str:
        due = summary.milestone.due_date
        return due.strftime("%B %Y") if due else "No due date"

    months = [(name, list(group)) for name, group in groupby(found, key=month)]
    return await render_template("milestones/roadmap.html", project=project, months=months)


# --- One milestone ----------------------------------------------------------------------------


async def _milestone_page(
    key: str, milestone_id: int, *, errors: dict[str, str] | None = None, status: int = 200
) -> tuple[str, int]:
    project, writable = await _project(key)
    session = get_session()
    page = await milestone_progress.milestone_page(
        session, logged_in_user(), project.id, milestone_id
    )
    chart = {
        "days": [day.day.isoformat() for day in page.burn_up],
        "scope": [day.scope for day in page.burn_up],
        "done": [day.done for day in page.burn_up],
    }
    html = await render_template(
        "milestones/show.html",
        project=project,
        page=page,
        milestone=page.milestone,
        # Read by burn_up.js from a JSON script element (the CSP forbids inline scripts).
        chart_json=json.dumps(chart).replace("<", "\\u003c"),
        can_write=writable,
        errors=errors or {},
        today=utcnow().date(),
    )
    return html, status


@bp.get(f"/p/<project_key:key>/milestones/<{ID}:milestone_id>")
@login_required
async def show(key: str, milestone_id: int) -> Page:
    return await _milestone_page(key, milestone_id)


@bp.post(f"/p/<project_key:key>/milestones/<{ID}:milestone_id>/edit")
@login_required
async def edit(key: str, milestone_id: int) -> Page:
    project, _ = await _project(key)
    project_id, project_key = project.id, project.key
    form = await request.form
    try:
        data = await read_form(MilestoneUpdate, form, authorise=_may_write(project_id))
        await milestones.update_milestone(
            get_session(), logged_in_user(), project_id, milestone_id, **data.changes()
        )
    except Invalid as refusal:
        errors = refusal.field_errors or {"form": refusal.message}
        return await _milestone_page(key, milestone_id, errors=errors, status=refusal.status)
    await flash("Milestone saved.")
    return redirect(url_for("milestones.show", key=project_key, milestone_id=milestone_id))


async def _close_page(
    project: Project, milestone_id: int, errors: dict[str, str] | None = None, status: int = 200
) -> tuple[str, int]:
    session = get_session()
    milestone = await milestones.get_milestone(session, logged_in_user(), project.id, milestone_id)
    targets = [
        other for other in await milestones.choices(session, project.id) if other.id != milestone.id
    ]
    page = await render_template(
        "milestones/close.html",
        project=project,
        milestone=milestone,
        open_issues=await milestones.open_issue_count(session, milestone),
        targets=targets,
        errors=errors or {},
    )
    return page, status


@bp.route(f"/p/<project_key:key>/milestones/<{ID}:milestone_id>/close", methods=["GET", "POST"])
@login_required
async def close(key: str, milestone_id: int) -> Page:
    """GET asks where the open issues go; POST closes, moving them there ("none": to none)."""
    project, writable = await _project(key)
    if request.method == "GET":
        if not writable:
            raise Forbidden("Only members of this project can close its milestones.")
        return await _close_page(project, milestone_id)
    project_id, project_key = project.id, project.key
    form = await request.form
    choice = form.get("move_to", "")
    try:
        target: int | None = milestones.UNCHANGED  # no choice made: refused if issues are open
        if choice == "none":
            target = None
        elif choice:
            data = await read_form(MilestoneClose, form, authorise=_may_write(project_id))
            target = data.move_to
        moved = await milestones.close_milestone(
            get_session(), logged_in_user(), project_id, milestone_id, move_to=target
        )
    except Invalid as refusal:
        fresh, _ = await _project(key)
        errors = refusal.field_errors or {"form": refusal.message}
        return await _close_page(fresh, milestone_id, errors, refusal.status)
    await flash(f"Milestone closed; {moved} open issue{'s' if moved != 1 else ''} moved.")
    return redirect(url_for("milestones.show", key=project_key, milestone_id=milestone_id))


@bp.post(f"/p/<project_key:key>/milestones/<{ID}:milestone_id>/reopen")
@login_required
async def reopen(key: str, milestone_id: int) -> Page:
    project, _ = await _project(key)
    project_key = project.key
    try:
        await milestones.reopen_milestone(get_session(), logged_in_user(), project.id, milestone_id)
    except Invalid as refusal:
        await flash(refusal.message)
    else:
        await flash("Milestone reopened.")
    return redirect(url_for("milestones.show", key=project_key, milestone_id=milestone_id))
