"""Projects, their members, labels, statuses and activity log."""

from __future__ import annotations

from quart import Blueprint, Response, url_for
from quart_schema import document_response, validate_querystring, validate_request

from app.api.auth import acting_user, caller
from app.api.pagination import after_id, id_cursor, link_header, next_link
from app.api.schemas import (
    ActivityArgs,
    ActivityList,
    LabelList,
    LabelOut,
    MemberList,
    MemberOut,
    PageArgs,
    ProjectList,
    ProjectOut,
    StatusList,
    activity_out,
    label_out,
    member_out,
    project_out,
    status_out,
)
from app.blueprints.guards import request_origin
from app.blueprints.imports import archive_download
from app.db import get_session
from app.errors import NotFound
from app.models import LARGEST_ID, Project
from app.services import activity, projects
from app.services.access import managed_project
from app.services.inputs import LabelIn, MemberAdd, MemberUpdate, ProjectCreate, ProjectUpdate

bp = Blueprint("projects", __name__)

Answer = tuple[object, int, dict[str, str]]
ID = f"int(max={LARGEST_ID})"


async def project_for(key: str) -> Project:
    """The project named `key` if the caller may read it, else NotFound."""
    return await projects.project_by_key(get_session(), caller(), key)


@bp.get("/projects")
@validate_querystring(PageArgs)
@document_response(ProjectList, 200)
async def list_projects(query_args: PageArgs) -> Answer:
    """The projects the caller may read: their own and public ones, in id order."""
    found, more = await projects.visible_projects_page(
        get_session(), caller(), after_id=after_id(query_args.after), limit=query_args.limit
    )
    next_url = next_link(after=id_cursor(found[-1].id)) if more else None
    body = ProjectList(items=[project_out(p) for p in found], next=next_url)
    return body, 200, link_header(next_url)


@bp.post("/projects")
@validate_request(ProjectCreate)
@document_response(ProjectOut, 201)
async def create_project(data: ProjectCreate) -> Answer:
    """Create a project; the caller becomes its owner."""
    project = await projects.create_project(get_session(), acting_user(), **data.model_dump())
    location = url_for("api.projects.show_project", key=project.key)
    return project_out(project), 201, {"Location": location}


@bp.get("/projects/<project_key:key>")
@document_response(ProjectOut, 200)
async def show_project(key: str) -> ProjectOut:
    """One project."""
    return project_out(await project_for(key))


@bp.patch("/projects/<project_key:key>")
@validate_request(ProjectUpdate)
@document_response(ProjectOut, 200)
async def update_project(key: str, data: ProjectUpdate) -> ProjectOut:
    """Change a project's name, description, visibility or archiving (owners and admins)."""
    session, user = get_session(), acting_user()
    project = await project_for(key)
    project_id = project.id  # a refused use case's rollback expires `project`
    # One use case: a refused field changes nothing, an unchanged one records nothing.
    await projects.update_project(
        session,
        user,
        project_id,
        name=data.name,
        description=data.description,
        is_public=data.is_public,
        archived=data.archived,
    )
    return project_out(await session.get(Project, project_id, populate_existing=True))


@bp.get("/projects/<project_key:key>/export")
async def export_project(key: str) -> Response:
    """The project's archive (decision 0030): a .zip of project.jsonl and the attachments'
    files, restorable into any instance (owners and admins)."""
    session, user = get_session(), acting_user()
    project = await project_for(key)
    await managed_project(session, user, project.id)
    return await archive_download(project)


# --- Members ----------------------------------------------------------------------------------


@bp.get("/projects/<project_key:key>/members")
@document_response(MemberList, 200)
async def list_members(key: str) -> MemberList:
    """The project's members and their roles."""
    project = await project_for(key)
    found = await projects.members(get_session(), project.id)
    return MemberList(items=[member_out(member) for member in found])


@bp.post("/projects/<project_key:key>/members")
@validate_request(MemberAdd)
@document_response(MemberOut, 201)
async def add_member(key: str, data: MemberAdd) -> tuple[MemberOut, int]:
    """Add someone with an account, by email address (owners and admins)."""
    project = await project_for(key)
    member = await projects.add_member(
        get_session(),
        acting_user(),
        project.id,
        email=data.email,
        role=data.role,
        origin=request_origin(),
    )
    return member_out(member), 201


async def _member(project_id: int, user_id: int) -> MemberOut:
    for member in await projects.members(get_session(), project_id):
        if member.user.id == user_id:
            return member_out(member)
    raise NotFound("No such member.")


@bp.patch(f"/projects/<project_key:key>/members/<{ID}:user_id>")
@validate_request(MemberUpdate)
@document_response(MemberOut, 200)
async def change_member_role(key: str, user_id: int, data: MemberUpdate) -> MemberOut:
    """Change a member's role (owners and admins; only owners make or unmake owners)."""
    project = await project_for(key)
    project_id = project.id
    await projects.change_role(
        get_session(), acting_user(), project_id, user_id, data.role, origin=request_origin()
    )
    return await _member(project_id, user_id)


@bp.delete(f"/projects/<project_key:key>/members/<{ID}:user_id>")
async def remove_member(key: str, user_id: int) -> Response:
    """Remove a member (owners and admins), or leave the project (yourself)."""
    project = await project_for(key)
    await projects.remove_member(
        get_session(), acting_user(), project.id, user_id, origin=request_origin()
    )
    return Response(status=204)


# --- Labels and statuses ----------------------------------------------------------------------


@bp.get("/projects/<project_key:key>/labels")
@document_response(LabelList, 200)
async def list_labels(key: str) -> LabelList:
    """The project's labels."""
    project = await project_for(key)
    return LabelList(items=[label_out(x) for x in await projects.labels(get_session(), project.id)])


@bp.post("/projects/<project_key:key>/labels")
@validate_request(LabelIn)
@document_response(LabelOut, 201)
async def create_label(key: str, data: LabelIn) -> tuple[LabelOut, int]:
    """Create a label (owners and admins)."""
    project = await project_for(key)
    label = await projects.save_label(
        get_session(), acting_user(), project.id, name=data.name, color=data.color
    )
    return label_out(label), 201


@bp.patch(f"/projects/<project_key:key>/labels/<{ID}:label_id>")
@validate_request(LabelIn)
@document_response(LabelOut, 200)
async def update_label(key: str, label_id: int, data: LabelIn) -> LabelOut:
    """Rename or recolour a label (owners and admins)."""
    project = await project_for(key)
    label = await projects.save_label(
        get_session(),
        acting_user(),
        project.id,
        name=data.name,
        color=data.color,
        label_id=label_id,
    )
    return label_out(label)


@bp.delete(f"/projects/<project_key:key>/labels/<{ID}:label_id>")
async def delete_label(key: str, label_id: int) -> Response:
    """Delete a label; issues lose it (owners and admins)."""
    project = await project_for(key)
    await projects.delete_label(get_session(), acting_user(), project.id, label_id)
    return Response(status=204)


@bp.get("/projects/<project_key:key>/statuses")
@document_response(StatusList, 200)
async def list_statuses(key: str) -> StatusList:
    """The project's workflow: the board's columns in order."""
    project = await project_for(key)
    found = await projects.workflow(get_session(), project.id)
    return StatusList(items=[status_out(status) for status in found])


# --- Activity ---------------------------------------------------------------------------------


def activity_page(rows: list, query_args: ActivityArgs) -> Answer:
    """A page of the log; `next` while the page came back full (more may be waiting)."""
    last_seq = rows[-1].seq if rows else query_args.after
    full = len(rows) == query_args.limit
    next_url = next_link(after=last_seq) if full else None
    body = ActivityList(items=[activity_out(row) for row in rows], last_seq=last_seq, next=next_url)
    return body, 200, link_header(next_url)


@bp.get("/projects/<project_key:key>/activity")
@validate_querystring(ActivityArgs)
@document_response(ActivityList, 200)
async def project_activity(key: str, query_args: ActivityArgs) -> Answer:
    """The project's changes after sequence `after`, oldest first: poll with the last seq."""
    project = await project_for(key)
    rows = await activity.activity_since(
        get_session(), project.id, query_args.after, limit=query_args.limit
    )
    return activity_page(rows, query_args)
