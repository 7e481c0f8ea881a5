"""Issues: a project's list, creating, the issue page with in-place edits, comments, bulk edits."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import Any

from quart import Blueprint, Response, flash, redirect, render_template, request, url_for
from werkzeug.datastructures import MultiDict

from app.blueprints.forms import model_field, read_form
from app.blueprints.guards import current_account, logged_in_user, login_required
from app.blueprints.page_cache import (
    cached_part,
    page_cache,
    project_part_key,
    proven_part,
    render_part,
)
from app.db import get_session
from app.errors import Forbidden, Invalid
from app.models import Issue, IssueType, Priority, Project, RelationType
from app.services import (
    attachments,
    comments,
    issue_views,
    issues,
    milestones,
    projects,
    relation_views,
    search,
)
from app.services.access import may_write, writable_project
from app.services.inputs import BulkUpdate, CommentIn, Id, IssueCreate, IssueUpdate
from app.services.issues import StaleEdit
from app.services.references import link_targets, readable_references

bp = Blueprint("issues", __name__)

Page = str | Response | tuple[str, int]


class IssueEdit(IssueUpdate):
    """An in-place edit on the issue page: one field, and the version its editor saw (the API
    sends that in If-Match)."""

    version: Id | None = None


def _is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


async def _can_write(project: Project) -> bool:
    return await may_write(get_session(), current_account(), project)


def _may_write_issues(project_id: int) -> Callable[[], Awaitable[object]]:
    """The check a refused form waits for: only writers hear what is wrong with their input."""
    return lambda: writable_project(get_session(), logged_in_user(), project_id)


# --- A project's issues -----------------------------------------------------------------------


@bp.get("/p/<project_key:key>")
@login_required
async def project_issues(key: str) -> Page:
    session = get_session()
    viewer = logged_in_user()
    project = await projects.project_by_key(session, viewer, key)
    query_text = request.args.get("q", "is:open")
    writable = await _can_write(project)
    error: str | None = None

    async def render_main_part() -> str:
        nonlocal error
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
        except Invalid as refusal:
            error, found, next_cursor = refusal.message, [], None
        return await render_part(
            "issues/_list.html",
            project=project,
            issues=found,
            next_cursor=next_cursor,
            q=query_text,
            query_error=error,
            can_write=writable,
            statuses=await projects.workflow(session, project.id) if writable else [],
            members=await projects.members(session, project.id) if writable else [],
            labels=await projects.labels(session, project.id) if writable else [],
            milestones=await milestones.choices(session, project.id) if writable else [],
        )

    # The whole query string: the pager's links carry it.
    arguments = tuple(request.args.items(multi=True))
    part_key = project_part_key("list", project, viewer, writable, arguments)
    main_part = await cached_part(part_key, render_main_part)
    if error is not None:
        # Not kept: a query that fails fails fast, and its answer must say 400 every time.
        page_cache().forget(part_key)
    page = await render_template("issues/list.html", project=project, body=main_part)
    return page, (400 if error else 200)


@bp.post("/p/<project_key:key>/issues/bulk")
@login_required
async def bulk_edit(key: str) -> Page:
    session = get_session()
    project = await projects.project_by_key(session, logged_in_user(), key)
    project_id, project_key = project.id, project.key  # a refused edit's rollback expires project
    form = await request.form
    # Left at "Assignee…" the assignees stay, at "Nobody" they go; no label ticked, they stay.
    given: dict[str, Any] = {} if form.getlist("labels") else {"label_ids": None}
    if form.get("assignee") == "none":
        given["assignee_id"] = None
    elif form.get("assignee"):
        given["assignee_id"] = form["assignee"]
    if form.get("milestone") == "none":  # likewise "Milestone…" keeps them, "None" clears
        given["milestone_id"] = None
    elif form.get("milestone"):
        given["milestone_id"] = form["milestone"]
    try:
        bulk = await read_form(
            BulkUpdate,
            form,
            fields=("issue_ids", "status_id", "priority", "label_ids"),
            authorise=_may_write_issues(project_id),
            **given,
        )
        changed = await issues.bulk_update(
            session, logged_in_user(), project_id, bulk.issue_ids, bulk.changes()
        )
    except Invalid as refusal:
        await flash(refusal.message)
    else:
        await flash(f"Updated {changed} issue{'s' if changed != 1 else ''}.")
    return redirect(url_for("issues.project_issues", key=project_key, q=form.get("q", "is:open")))


# --- Creating ---------------------------------------------------------------------------------


async def _new_issue_page(
    project: Project, form: MultiDict, errors: dict[str, str], status: int = 200
) -> tuple[str, int]:
    session = get_session()
    page = await render_template(
        "issues/new.html",
        project=project,
        form=form,
        errors=errors,
        statuses=await projects.workflow(session, project.id),
        members=await projects.members(session, project.id),
        labels=await projects.labels(session, project.id),
        types=IssueType,
        priorities=Priority,
    )
    return page, status


@bp.route("/p/<project_key:key>/issues/new", methods=["GET", "POST"])
@login_required
async def new(key: str) -> Page:
    session = get_session()
    project = await projects.project_by_key(session, logged_in_user(), key)
    if request.method == "GET":
        if not await _can_write(project):
            raise Forbidden("Only members of this project can create issues in it.")
        return await _new_issue_page(project, MultiDict(request.args), {})
    form = await request.form
    try:
        data = await read_form(IssueCreate, form, authorise=_may_write_issues(project.id))
        issue = await issues.create_issue(
            session, logged_in_user(), project.id, **data.model_dump()
        )
    except Invalid as refusal:
        fresh = await projects.project_by_key(get_session(), logged_in_user(), key)
        return await _new_issue_page(
            fresh, form, refusal.field_errors or {"form": refusal.message}, refusal.status
        )
    await flash(f"Created {project.key}-{issue.number}.")
    if form.get("return_to") == "board":
        return redirect(url_for("boards.board", key=project.key))
    return redirect(url_for("issues.show", key=f"{project.key}-{issue.number}"))


# --- The issue page ---------------------------------------------------------------------------


async def _issue_page(
    issue_key: str, *, error: str | None = None, stale: StaleEdit | None = None, status: int = 200
) -> tuple[str, int]:
    session = get_session()
    viewer = logged_in_user()
    heading = await issue_views.issue_heading(session, viewer, issue_key)
    writable = await _can_write(heading.project)
    # Kept per state of this issue, not of its whole project (decision 0016): its latest event,
    # its project's latest change to itself, and what the log does not cover (decision 0012).
    # The issues its texts name can appear or go meanwhile: that is the part's proof, checked
    # at each view (one query, only when the texts name issues).
    key = (
        "issue",
        heading.id,
        heading.issue_seq,
        heading.project.id,
        heading.project_seq,
        viewer.id,
        viewer.display_name,
        writable,
        heading.watching,
    )

    async def render_main_part() -> tuple[str, Hashable]:
        issue = await issue_views.get_issue(session, viewer, heading.project.id, heading.number)
        entries = await issue_views.timeline(session, issue)
        texts = [issue.description] + [entry.comment.body for entry in entries if entry.comment]
        targets = await link_targets(session, viewer, texts)
        project_id = issue.project_id
        planning = await relation_views.issue_relations(session, viewer, issue.id, issue.parent_id)
        html = await render_part(
            "issues/_issue.html",
            issue=issue,
            planning=planning,
            relation_types=RelationType,
            timeline=entries,
            mentions=targets.mentions,
            references=targets.references,
            can_write=writable,
            watching=heading.watching,
            statuses=await projects.workflow(session, project_id),
            members=await projects.members(session, project_id) if writable else [],
            labels=await projects.labels(session, project_id) if writable else [],
            milestones=await milestones.choices(session, project_id, issue.milestone_id),
            types=IssueType,
            priorities=Priority,
            error=error,
            stale=stale,
            attachments=await attachments.list_attachments(session, viewer, issue.id),
        )
        proof = (targets.named, frozenset(targets.references), issue.parent_id, planning.proof)
        return html, proof

    async def links_unchanged(proof: tuple[Any, ...]) -> bool:
        named, linked, parent_id, shown = proof
        if named and frozenset(await readable_references(session, viewer, named)) != linked:
            return False
        if not shown:
            return True
        # Other issues' titles and statuses, and whether the viewer may still read them.
        fresh = await relation_views.issue_relations(session, viewer, heading.id, parent_id)
        return fresh.proof == shown

    # A refusal's message is shown once: that page is made afresh and not kept.
    main_part = await proven_part(
        None if error or stale else key, render_main_part, links_unchanged
    )
    return await render_template("issues/show.html", heading=heading, body=main_part), status


@bp.get("/<issue_key:key>")
@login_required
async def show(key: str) -> Page:
    if key != key.upper():
        return redirect(url_for("issues.show", key=key.upper()))
    return await _issue_page(key)


async def _edit_from(form: MultiDict, project_id: int) -> IssueEdit:
    """The one field an in-place edit form sends (its `field` says which), and the version."""
    field = model_field(IssueUpdate, form.get("field", ""))
    if field is None:
        raise Invalid(f"Unknown field {form.get('field', '')!r}.", field="field")
    return await read_form(
        IssueEdit, form, fields=(field, "version"), authorise=_may_write_issues(project_id)
    )


@bp.post("/<issue_key:key>/edit")
@login_required
async def edit(key: str) -> Page:
    session = get_session()
    issue = await issue_views.get_issue_by_key(session, logged_in_user(), key)
    form = await request.form
    try:
        edit = await _edit_from(form, issue.project_id)
        await issues.update_issue(
            session, logged_in_user(), issue.id, edit.changes(), expected_version=edit.version
        )
    except StaleEdit as stale:
        return await _issue_page(key, stale=stale, status=409)
    except Invalid as refusal:
        return await _issue_page(key, error=refusal.message, status=400)
    if _is_htmx():
        return await _issue_page(key)
    return redirect(url_for("issues.show", key=key))


@bp.post("/<issue_key:key>/comments")
@login_required
async def add_comment(key: str) -> Page:
    session = get_session()
    # The heading's one query names the issue and checks access; the comment needs no more.
    issue = await issue_views.issue_heading(session, logged_in_user(), key)
    try:
        data = await read_form(
            CommentIn, await request.form, authorise=_may_write_issues(issue.project.id)
        )
        comment = await comments.add_comment(session, logged_in_user(), issue.id, data.body)
    except Invalid as refusal:
        return await _issue_page(key, error=refusal.message, status=400)
    return redirect(url_for("issues.show", key=key, _anchor=f"comment-{comment.id}"))


@bp.post("/<issue_key:key>/comments/<int(max=2147483647):comment_id>")
@login_required
async def change_comment(key: str, comment_id: int) -> Page:
    session = get_session()
    await issue_views.get_issue_by_key(session, logged_in_user(), key)
    form = await request.form
    try:
        if form.get("delete"):
            await comments.delete_comment(session, logged_in_user(), comment_id)
        else:
            data = await read_form(
                CommentIn,
                form,
                authorise=lambda: comments.own_comment(session, logged_in_user(), comment_id),
            )
            await comments.edit_comment(session, logged_in_user(), comment_id, data.body)
    except Invalid as refusal:
        return await _issue_page(key, error=refusal.message, status=400)
    return redirect(url_for("issues.show", key=key, _anchor=f"comment-{comment_id}"))


@bp.post("/<issue_key:key>/watch")
@login_required
async def watch(key: str) -> Response:
    session = get_session()
    issue: Issue = await issue_views.get_issue_by_key(session, logged_in_user(), key)
    watching = (await request.form).get("watching") == "1"
    await issues.set_watching(session, logged_in_user(), issue.id, watching)
    await flash("You are watching this issue." if watching else "You stopped watching this issue.")
    return redirect(url_for("issues.show", key=key))
