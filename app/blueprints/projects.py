"""Projects: the list, creating one, settings (workflow, labels, archive) and members."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from quart import Blueprint, Response, flash, redirect, render_template, request, url_for
from werkzeug.datastructures import MultiDict

from app.blueprints.forms import form_int, form_text, read_form
from app.blueprints.guards import logged_in_user, login_required, request_origin
from app.db import get_session
from app.errors import Conflict, Invalid
from app.models import Project, Role, StatusCategory
from app.services import importing, projects
from app.services.access import managed_project, role_in
from app.services.inputs import LabelIn, MemberAdd, MemberUpdate, ProjectCreate, ProjectUpdate

bp = Blueprint("projects", __name__)

Page = str | Response | tuple[str, int]
# A settings or members change: given the project and the submitted form, may raise Invalid.
ProjectAction = Callable[[Project, MultiDict], Awaitable[None]]
# A page that shows a project's settings or members again, with errors and a status.
ProjectPage = Callable[[Project, dict[str, str] | None, int], Awaitable[tuple[str, int]]]


@bp.get("/projects")
@login_required
async def index() -> str:
    visible = await projects.visible_projects(get_session(), logged_in_user())
    return await render_template("projects/index.html", projects=visible)


@bp.route("/projects/new", methods=["GET", "POST"])
@login_required
async def new() -> Page:
    if request.method == "GET":
        return await render_template("projects/new.html", form={}, errors={})
    form = await request.form
    try:
        data = await read_form(ProjectCreate, form, is_public=form.get("visibility") == "public")
        project = await projects.create_project(
            get_session(), logged_in_user(), **data.model_dump()
        )
    except (Invalid, Conflict) as refusal:
        page = await render_template("projects/new.html", form=form, errors=refusal.field_errors)
        return page, refusal.status
    await flash(f"Project {project.key} is ready. Create its first issue.")
    return redirect(url_for("issues.project_issues", key=project.key))


async def _settings_page(
    project: Project, errors: dict[str, str] | None = None, status: int = 200
) -> tuple[str, int]:
    session = get_session()
    page = await render_template(
        "projects/settings.html",
        project=project,
        statuses=await projects.workflow(session, project.id),
        labels=await projects.labels(session, project.id),
        categories=StatusCategory,
        imports=await importing.recent_jobs(session, project.id),
        errors=errors or {},
    )
    return page, status


def _may_manage(project_id: int) -> Callable[[], Awaitable[object]]:
    """The check a refused form waits for: only managers hear what is wrong with their input."""
    return lambda: managed_project(get_session(), logged_in_user(), project_id)


async def _managed(key: str) -> Project:
    """The project of a settings page; private ones are NotFound, services refuse the rest."""
    return await projects.project_by_key(get_session(), logged_in_user(), key)


@bp.get("/p/<project_key:key>/settings")
@login_required
async def settings(key: str) -> Page:
    project = await _managed(key)
    role = await role_in(get_session(), logged_in_user(), project.id)
    if role is None or not role.can_manage_project:
        return await render_template(
            "errors/error.html", status=403, message="Only owners and admins see the settings."
        ), 403
    return await _settings_page(project)


async def _project_action(
    key: str, action: ProjectAction, success: str, page: ProjectPage, endpoint: str
) -> Page:
    """Run a settings or members change; on a refusal show `page` again with the errors,
    on success go back to `endpoint` (or to the projects, for someone who left)."""
    project = await _managed(key)
    project_key = project.key
    form = await request.form
    try:
        await action(project, form)
    except Invalid as refusal:
        return await page(
            await _managed(key), refusal.field_errors or {"form": refusal.message}, refusal.status
        )
    await flash(success)
    if form.get("leaving"):
        return redirect(url_for("projects.index"))
    return redirect(url_for(endpoint, key=project_key))


async def _settings_action(key: str, action: ProjectAction, success: str) -> Page:
    return await _project_action(key, action, success, _settings_page, "projects.settings")


@bp.post("/p/<project_key:key>/settings")
@login_required
async def save_settings(key: str) -> Page:
    async def save(project: Project, form: MultiDict) -> None:
        wanted = await read_form(
            ProjectUpdate,
            form,
            fields=("name", "description"),
            authorise=_may_manage(project.id),
            is_public=form.get("visibility") == "public",
        )
        await projects.update_settings(
            get_session(), logged_in_user(), project.id, **wanted.model_dump(exclude={"archived"})
        )

    return await _settings_action(key, save, "Settings saved.")


@bp.post("/p/<project_key:key>/archive")
@login_required
async def archive(key: str) -> Page:
    async def toggle(project: Project, form: MultiDict) -> None:
        await projects.set_archived(
            get_session(), logged_in_user(), project.id, form.get("archived") == "1"
        )

    return await _settings_action(key, toggle, "Project updated.")


@bp.post("/p/<project_key:key>/statuses")
@login_required
async def add_status(key: str) -> Page:
    async def add(project: Project, form: MultiDict) -> None:
        await projects.add_status(
            get_session(),
            logged_in_user(),
            project.id,
            name=form_text(form, "name"),
            category=form_text(form, "category"),
        )

    return await _settings_action(key, add, "Status added.")


@bp.post("/p/<project_key:key>/statuses/<int(max=2147483647):status_id>")
@login_required
async def update_status(key: str, status_id: int) -> Page:
    async def update(project: Project, form: MultiDict) -> None:
        if form.get("move") in ("-1", "1"):
            await projects.move_status(
                get_session(), logged_in_user(), project.id, status_id, offset=int(form["move"])
            )
        elif form.get("delete"):
            await projects.delete_status(get_session(), logged_in_user(), project.id, status_id)
        else:
            await projects.update_status(
                get_session(),
                logged_in_user(),
                project.id,
                status_id,
                name=form_text(form, "name"),
                category=form_text(form, "category"),
            )

    return await _settings_action(key, update, "Workflow saved.")


@bp.post("/p/<project_key:key>/labels")
@login_required
async def save_label(key: str) -> Page:
    async def save(project: Project, form: MultiDict) -> None:
        label_id = form_int(form, "label_id")
        if form.get("delete") and label_id is not None:
            await projects.delete_label(get_session(), logged_in_user(), project.id, label_id)
            return
        label = await read_form(LabelIn, form, authorise=_may_manage(project.id))
        await projects.save_label(
            get_session(), logged_in_user(), project.id, **label.model_dump(), label_id=label_id
        )

    return await _settings_action(key, save, "Labels saved.")


# --- Members ----------------------------------------------------------------------------------


async def _members_page(
    project: Project, errors: dict[str, str] | None = None, status: int = 200
) -> tuple[str, int]:
    session = get_session()
    viewer_role = await role_in(session, logged_in_user(), project.id)
    page = await render_template(
        "projects/members.html",
        project=project,
        members=await projects.members(session, project.id),
        viewer_role=viewer_role,
        roles=Role,
        errors=errors or {},
    )
    return page, status


@bp.get("/p/<project_key:key>/members")
@login_required
async def members(key: str) -> Page:
    return await _members_page(await _managed(key))


async def _members_action(key: str, action: ProjectAction, success: str) -> Page:
    return await _project_action(key, action, success, _members_page, "projects.members")


@bp.post("/p/<project_key:key>/members")
@login_required
async def add_member(key: str) -> Page:
    async def add(project: Project, form: MultiDict) -> None:
        member = await read_form(MemberAdd, form, authorise=_may_manage(project.id))
        await projects.add_member(
            get_session(),
            logged_in_user(),
            project.id,
            **member.model_dump(),
            origin=request_origin(),
        )

    return await _members_action(key, add, "Member added.")


@bp.post("/p/<project_key:key>/members/<int(max=2147483647):user_id>")
@login_required
async def update_member(key: str, user_id: int) -> Page:
    async def update(project: Project, form: MultiDict) -> None:
        if form.get("remove"):
            await projects.remove_member(
                get_session(), logged_in_user(), project.id, user_id, origin=request_origin()
            )
        else:
            member = await read_form(MemberUpdate, form, authorise=_may_manage(project.id))
            await projects.change_role(
                get_session(),
                logged_in_user(),
                project.id,
                user_id,
                member.role,
                origin=request_origin(),
            )

    return await _members_action(key, update, "Members saved.")
