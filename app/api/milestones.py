"""A project's milestones: list, create, read, update with If-Match, close and reopen."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel
from quart import Blueprint, url_for
from quart_schema import document_response, validate_request

from app.api.auth import acting_user, caller
from app.api.issues import _expected_version as expected_version
from app.api.projects import ID, Answer, project_for
from app.api.schemas import ErrorOut
from app.db import get_session
from app.services import milestones
from app.services.inputs import MilestoneClose, MilestoneCreate, MilestoneUpdate
from app.services.milestones import MilestoneSummary

bp = Blueprint("milestones", __name__)


class MilestoneOut(BaseModel):
    """A milestone with its progress: issues and story points, all and done. `version` goes up
    with every change; it is also the ETag."""

    id: int
    title: str
    description: str
    due_date: date | None
    state: str  # open or closed
    overdue: bool
    closed_at: datetime | None
    issues: int
    issues_done: int
    points: int
    points_done: int
    version: int
    created_at: datetime
    updated_at: datetime


class MilestoneList(BaseModel):
    """Open milestones first, soonest due first; then closed ones."""

    items: list[MilestoneOut]


def milestone_out(found: MilestoneSummary) -> MilestoneOut:
    milestone = found.milestone
    return MilestoneOut(
        id=milestone.id,
        title=milestone.title,
        description=milestone.description,
        due_date=milestone.due_date,
        state="open" if milestone.is_open else "closed",
        overdue=found.overdue,
        closed_at=milestone.closed_at,
        issues=found.total,
        issues_done=found.done,
        points=found.points,
        points_done=found.points_done,
        version=milestone.version,
        created_at=milestone.created_at,
        updated_at=milestone.updated_at,
    )


async def _answer(project_id: int, milestone_id: int, status: int = 200) -> Answer:
    found = await milestones.summary(get_session(), caller(), project_id, milestone_id)
    return milestone_out(found), status, {"ETag": f'"{found.milestone.version}"'}


@bp.get("/projects/<project_key:key>/milestones")
@document_response(MilestoneList, 200)
async def list_milestones(key: str) -> MilestoneList:
    """The project's milestones with their progress."""
    project = await project_for(key)
    found = await milestones.summaries(get_session(), caller(), project.id)
    return MilestoneList(items=[milestone_out(summary) for summary in found])


@bp.post("/projects/<project_key:key>/milestones")
@validate_request(MilestoneCreate)
@document_response(MilestoneOut, 201)
async def create_milestone(key: str, data: MilestoneCreate) -> Answer:
    """Create an open milestone (members). Titles are unique in a project, in any case."""
    project = await project_for(key)
    project_id, project_key = project.id, project.key
    made = await milestones.create_milestone(
        get_session(), acting_user(), project_id, **data.model_dump()
    )
    body, status, headers = await _answer(project_id, made.id, 201)
    location = url_for("api.milestones.show_milestone", key=project_key, milestone_id=made.id)
    return body, status, {**headers, "Location": location}


@bp.get(f"/projects/<project_key:key>/milestones/<{ID}:milestone_id>")
@document_response(MilestoneOut, 200)
async def show_milestone(key: str, milestone_id: int) -> Answer:
    """One milestone; the ETag is its version."""
    project = await project_for(key)
    return await _answer(project.id, milestone_id)


@bp.patch(f"/projects/<project_key:key>/milestones/<{ID}:milestone_id>")
@validate_request(MilestoneUpdate)
@document_response(MilestoneOut, 200)
@document_response(ErrorOut, 412)
async def update_milestone(key: str, milestone_id: int, data: MilestoneUpdate) -> Answer:
    """Change the title, description or due date (members). With `If-Match: "<version>"` only
    that version changes, else 412; without it, whatever is current."""
    project = await project_for(key)
    project_id = project.id
    await milestones.update_milestone(
        get_session(),
        acting_user(),
        project_id,
        milestone_id,
        expected_version=expected_version(),
        **data.changes(),
    )
    return await _answer(project_id, milestone_id)


@bp.post(f"/projects/<project_key:key>/milestones/<{ID}:milestone_id>/close")
@validate_request(MilestoneClose)
@document_response(MilestoneOut, 200)
@document_response(ErrorOut, 412)
async def close_milestone(key: str, milestone_id: int, data: MilestoneClose) -> Answer:
    """Close the milestone (members). Its open issues go to the open milestone `move_to`, or
    to none when `move_to` is null, in the same commit; with open issues and no `move_to`,
    400 says how many. If-Match as for updates."""
    project = await project_for(key)
    project_id = project.id
    await milestones.close_milestone(
        get_session(),
        acting_user(),
        project_id,
        milestone_id,
        move_to=data.target(),
        expected_version=expected_version(),
    )
    return await _answer(project_id, milestone_id)


@bp.post(f"/projects/<project_key:key>/milestones/<{ID}:milestone_id>/reopen")
@document_response(MilestoneOut, 200)
async def reopen_milestone(key: str, milestone_id: int) -> Answer:
    """Reopen a closed milestone (members)."""
    project = await project_for(key)
    project_id = project.id
    await milestones.reopen_milestone(get_session(), acting_user(), project_id, milestone_id)
    return await _answer(project_id, milestone_id)
