"""Projects: creation, settings, the workflow's statuses, labels, members and roles."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, func, literal, or_, select, union_all
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.errors import Conflict, Forbidden, Invalid, NotFound
from app.models import (
    Issue,
    Label,
    Membership,
    Project,
    Role,
    SavedSearch,
    User,
    WorkflowStatus,
)
from app.models.issue import DEFAULT_WORKFLOW, StatusCategory
from app.models.project import KEY_MAX_LENGTH, KEY_PATTERN
from app.services import access, audit
from app.services.access import (
    managed_project,
    readable_project,
    require_validated,
    role_in,
)
from app.services.activity import record_activity
from app.services.text import storable
from app.services.transaction import use_case

PROJECT_KEY = re.compile(KEY_PATTERN)
NAME_MAX = 100
DESCRIPTION_MAX = 5000
LABEL_NAME_MAX = 50
COLOR = re.compile(r"#[0-9a-fA-F]{6}")


def normalise_key(key: str) -> str:
    key = key.strip().upper()
    if not PROJECT_KEY.fullmatch(key):
        raise Invalid(
            f"A project key is 2 to {KEY_MAX_LENGTH} letters or digits, starting with a letter "
            "(such as WEB).",
            field="key",
        )
    return key


def _description(description: str) -> str:
    return storable(description).strip()[:DESCRIPTION_MAX]


def _name(name: str, what: str = "A project", limit: int = NAME_MAX) -> str:
    name = storable(name).strip()
    if not 1 <= len(name) <= limit:
        raise Invalid(f"{what} needs a name of at most {limit} characters.", field="name")
    return name


# --- Reading ----------------------------------------------------------------------------------


async def project_by_key(session: AsyncSession, viewer: User | None, key: str) -> Project:
    """The project if `viewer` may read it; NotFound for a missing or private one alike."""
    return await access.project_by_key(session, viewer, key, missing="No such project.")


def _readable_by(viewer: User | None) -> ColumnElement[bool]:
    if viewer is None:
        return Project.is_public.is_(True)
    member_of = select(Membership.project_id).where(Membership.user_id == viewer.id)
    return or_(Project.id.in_(member_of), Project.is_public.is_(True))


# Every project a viewer may read, with its event counter: the state a search across them
# shows (see readable_state). Built once; a None viewer reads the public ones.
READABLE_COUNTERS = (
    select(Project.id, Project.last_event_seq)
    .where(
        or_(
            Project.is_public.is_(True),
            Project.id.in_(
                select(Membership.project_id).where(Membership.user_id == bindparam("viewer_id"))
            ),
        )
    )
    .order_by(Project.id)
)


async def readable_state(session: AsyncSession, viewer: User | None) -> str:
    """A digest of which projects `viewer` may read and of each one's event counter: it
    changes whenever anything a search across them could show changes (decision 0012)."""
    rows = await session.execute(READABLE_COUNTERS, {"viewer_id": viewer.id if viewer else None})
    digest = hashlib.blake2b(digest_size=16)
    for project_id, seq in rows:
        digest.update(f"{project_id}:{seq},".encode())
    return digest.hexdigest()


async def visible_projects(session: AsyncSession, viewer: User | None) -> list[Project]:
    """Projects `viewer` may read: their own and public ones (only public ones when anonymous),
    archived last, by name."""
    return list(
        await session.scalars(
            select(Project)
            .where(_readable_by(viewer))
            .order_by(Project.archived_at.is_not(None), Project.name)
        )
    )


async def visible_projects_page(
    session: AsyncSession, viewer: User | None, *, after_id: int = 0, limit: int = 50
) -> tuple[list[Project], bool]:
    """One page of the projects `viewer` may read in id order (stable under inserts, for API
    cursors), and whether more follow."""
    rows = list(
        await session.scalars(
            select(Project)
            .where(_readable_by(viewer), Project.id > after_id)
            .order_by(Project.id)
            .limit(limit + 1)
        )
    )
    return rows[:limit], len(rows) > limit


@dataclass(frozen=True)
class ProjectLink:
    key: str
    name: str


@dataclass(frozen=True)
class SavedSearchLink:
    name: str
    query: str


@dataclass(frozen=True)
class Navigation:
    """What the sidebar links to: the viewer's first projects and their saved searches."""

    projects: list[ProjectLink]
    saved: list[SavedSearchLink]


def _navigation_statement() -> Select[Any]:
    """The viewer's first 30 projects (by name, not archived) and their saved searches, in one
    statement: the sidebar is on every page, so a few rows, not a member of 200 projects'
    every project."""
    first_projects = (
        select(
            literal(0).label("part"),
            Project.name.label("sort_name"),
            Project.id.label("sort_id"),
            Project.key.label("first"),
            Project.name.label("second"),
        )
        .join(Membership, Membership.project_id == Project.id)
        .where(Membership.user_id == bindparam("viewer_id"), Project.archived_at.is_(None))
        .order_by(Project.name, Project.id)
        .limit(bindparam("limit"))
        .subquery()
    )
    saved = select(
        literal(1),
        func.lower(SavedSearch.name),
        SavedSearch.id,
        SavedSearch.name,
        SavedSearch.query,
    ).where(SavedSearch.user_id == bindparam("viewer_id"))
    both = union_all(select(first_projects), saved).subquery()
    return select(both.c.part, both.c.first, both.c.second).order_by(
        both.c.part, both.c.sort_name, both.c.sort_id
    )


# Every page's sidebar: built once (building this union costs more than running it).
NAVIGATION = _navigation_statement()


async def navigation(session: AsyncSession, viewer: User, *, limit: int = 30) -> Navigation:
    """The sidebar of every page, in one query (see _navigation_statement)."""
    rows = await session.execute(NAVIGATION, {"viewer_id": viewer.id, "limit": limit})
    links = Navigation([], [])
    for part, first, second in rows:
        if part == 0:
            links.projects.append(ProjectLink(first, second))
        else:
            links.saved.append(SavedSearchLink(first, second))
    return links


async def workflow(session: AsyncSession, project_id: int) -> list[WorkflowStatus]:
    return list(
        await session.scalars(
            select(WorkflowStatus)
            .where(WorkflowStatus.project_id == project_id)
            .order_by(WorkflowStatus.position, WorkflowStatus.id)
        )
    )


async def labels(session: AsyncSession, project_id: int) -> list[Label]:
    return list(
        await session.scalars(
            select(Label).where(Label.project_id == project_id).order_by(Label.name)
        )
    )


@dataclass
class Member:
    user: User
    role: Role


async def members(session: AsyncSession, project_id: int) -> list[Member]:
    rows = await session.execute(
        select(User, Membership.role)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.project_id == project_id)
        .order_by(User.display_name)
    )
    return [Member(user, Role(role)) for user, role in rows.all()]


# --- Creating and settings --------------------------------------------------------------------


@use_case
async def create_project(
    session: AsyncSession,
    creator: User,
    *,
    key: str,
    name: str,
    description: str = "",
    is_public: bool = False,
) -> Project:
    """Create a project owned by `creator`, with the default workflow. Raises Invalid for bad
    fields, Conflict for a taken key; nothing is written then."""
    require_validated(creator)
    key = normalise_key(key)
    name = _name(name)
    if await session.scalar(select(Project.id).where(Project.key == key)) is not None:
        raise Conflict(f"The key {key} is taken by another project.", field="key")

    project = Project(
        key=key, name=name, description=_description(description), is_public=is_public
    )
    session.add(project)
    try:
        await session.flush()
        session.add(Membership(project_id=project.id, user_id=creator.id, role=Role.OWNER.value))
        session.add_all(
            WorkflowStatus(project_id=project.id, name=name, category=category, position=position)
            for position, (name, category) in enumerate(DEFAULT_WORKFLOW)
        )
        await record_activity(
            session, project, creator, "project.created", payload={"key": key, "name": project.name}
        )
        await session.flush()
    except IntegrityError as error:  # another request took the key between check and insert
        raise Conflict(f"The key {key} is taken by another project.", field="key") from error
    return project


@use_case
async def update_settings(
    session: AsyncSession,
    actor: User,
    project_id: int,
    *,
    name: str,
    description: str,
    is_public: bool,
) -> Project:
    project = await managed_project(session, actor, project_id)
    project.name, project.description = _name(name), _description(description)
    project.is_public = is_public
    await record_activity(
        session, project, actor, "project.updated", payload={"name": project.name}
    )
    return project


@use_case
async def set_archived(session: AsyncSession, actor: User, project_id: int, archived: bool) -> None:
    """Archive (read-only, out of the sidebar) or bring back a project."""
    project = await managed_project(session, actor, project_id)
    if (project.archived_at is not None) == archived:
        return  # as asked already: no event for a change that did not happen
    project.archived_at = utcnow() if archived else None
    kind = "project.archived" if archived else "project.unarchived"
    await record_activity(session, project, actor, kind)


@use_case
async def update_project(
    session: AsyncSession,
    actor: User,
    project_id: int,
    *,
    name: str | None = None,
    description: str | None = None,
    is_public: bool | None = None,
    archived: bool | None = None,
) -> Project:
    """Change any of a project's settings and its archiving at once: every value is checked
    before anything changes, one commit, and an event only for what did change."""
    project = await managed_project(session, actor, project_id)
    new_name = _name(name) if name is not None else project.name
    new_description = _description(description) if description is not None else project.description
    new_public = is_public if is_public is not None else project.is_public
    if (new_name, new_description, new_public) != (
        project.name,
        project.description,
        project.is_public,
    ):
        project.name, project.description, project.is_public = (
            new_name,
            new_description,
            new_public,
        )
        await record_activity(
            session, project, actor, "project.updated", payload={"name": project.name}
        )
    if archived is not None and (project.archived_at is not None) != archived:
        project.archived_at = utcnow() if archived else None
        kind = "project.archived" if archived else "project.unarchived"
        await record_activity(session, project, actor, kind)
    return project


# --- Workflow ---------------------------------------------------------------------------------


def _category(category: str) -> str:
    try:
        return StatusCategory(category).value
    except ValueError:
        choices = ", ".join(StatusCategory)
        raise Invalid(f"A category is one of {choices}.", field="category") from None


@use_case
async def add_status(
    session: AsyncSession, actor: User, project_id: int, *, name: str, category: str
) -> WorkflowStatus:
    project = await managed_project(session, actor, project_id)
    name = _name(name, "A status", 50)
    category = _category(category)
    if await session.scalar(
        select(WorkflowStatus.id).where(
            WorkflowStatus.project_id == project.id, func.lower(WorkflowStatus.name) == name.lower()
        )
    ):
        raise Invalid(f"There is a status called {name} already.", field="name")
    last = await session.scalar(
        select(func.max(WorkflowStatus.position)).where(WorkflowStatus.project_id == project.id)
    )
    status = WorkflowStatus(
        project_id=project.id, name=name, category=category, position=(last or 0) + 1
    )
    session.add(status)
    await record_activity(
        session, project, actor, "project.workflow_changed", payload={"added": name}
    )
    return status


async def _status(session: AsyncSession, project_id: int, status_id: int) -> WorkflowStatus:
    status = await session.get(WorkflowStatus, status_id)
    if status is None or status.project_id != project_id:
        raise NotFound("No such status.")
    return status


@use_case
async def update_status(
    session: AsyncSession, actor: User, project_id: int, status_id: int, *, name: str, category: str
) -> WorkflowStatus:
    project = await managed_project(session, actor, project_id)
    status = await _status(session, project.id, status_id)
    name = _name(name, "A status", 50)
    category = _category(category)
    clash = await session.scalar(
        select(WorkflowStatus.id).where(
            WorkflowStatus.project_id == project.id,
            func.lower(WorkflowStatus.name) == name.lower(),
            WorkflowStatus.id != status.id,
        )
    )
    if clash:
        raise Invalid(f"There is a status called {name} already.", field="name")
    before = status.name
    status.name, status.category = name, category
    await record_activity(
        session, project, actor, "project.workflow_changed", payload={"renamed": [before, name]}
    )
    return status


@use_case
async def move_status(
    session: AsyncSession, actor: User, project_id: int, status_id: int, *, offset: int
) -> None:
    """Move a column left (offset -1) or right (+1) on the board."""
    project = await managed_project(session, actor, project_id)
    columns = await workflow(session, project.id)
    index = next((i for i, column in enumerate(columns) if column.id == status_id), None)
    if index is None:
        raise NotFound("No such status.")
    target = max(0, min(len(columns) - 1, index + offset))
    columns.insert(target, columns.pop(index))
    for position, column in enumerate(columns):
        column.position = position
    await record_activity(session, project, actor, "project.workflow_changed")


@use_case
async def delete_status(
    session: AsyncSession, actor: User, project_id: int, status_id: int
) -> None:
    """Remove an empty column; a workflow keeps at least one."""
    project = await managed_project(session, actor, project_id)
    status = await _status(session, project.id, status_id)
    if await session.scalar(select(Issue.id).where(Issue.status_id == status.id).limit(1)):
        raise Invalid(f"Move the issues out of {status.name} before removing it.", field="status")
    if len(await workflow(session, project.id)) == 1:
        raise Invalid("A workflow needs at least one status.", field="status")
    await session.delete(status)
    await record_activity(
        session, project, actor, "project.workflow_changed", payload={"removed": status.name}
    )


# --- Labels -----------------------------------------------------------------------------------


def _color(color: str) -> str:
    color = color.strip()
    if not COLOR.fullmatch(color):
        raise Invalid("A colour is written like #3b82f6.", field="color")
    return color.lower()


@use_case
async def save_label(
    session: AsyncSession,
    actor: User,
    project_id: int,
    *,
    name: str,
    color: str,
    label_id: int | None = None,
) -> Label:
    """Create a label, or rename and recolour one (label_id given)."""
    project = await managed_project(session, actor, project_id)
    # No lock on the project's row before the label's: every writer takes the project's row
    # last, at commit (take_numbers), after the labels an issue being labelled holds.
    name, color = _name(name, "A label", LABEL_NAME_MAX), _color(color)
    clash = select(Label.id).where(
        Label.project_id == project.id, func.lower(Label.name) == name.lower()
    )
    if label_id is not None:
        clash = clash.where(Label.id != label_id)
    if await session.scalar(clash):
        raise Invalid(f"There is a label called {name} already.", field="name")
    if label_id is None:
        label = Label(project_id=project.id, name=name, color=color)
        session.add(label)
    else:
        label = await session.get(Label, label_id)
        if label is None or label.project_id != project.id:
            raise NotFound("No such label.")
        label.name, label.color = name, color
    await session.flush()  # the new label's id, for the event
    # In the log like any other change: pages kept by the project's counter show labels.
    await record_activity(
        session,
        project,
        actor,
        "project.labels_changed",
        payload={"saved": {"id": label.id, "name": name, "color": color}},
    )
    return label


@use_case
async def delete_label(session: AsyncSession, actor: User, project_id: int, label_id: int) -> None:
    project = await managed_project(session, actor, project_id)
    label = await session.get(Label, label_id)
    if label is None or label.project_id != project.id:
        raise NotFound("No such label.")
    await session.delete(label)
    await record_activity(
        session,
        project,
        actor,
        "project.labels_changed",
        payload={"removed": {"id": label.id, "name": label.name}},
    )


# --- Members ----------------------------------------------------------------------------------


async def _owner_count(session: AsyncSession, project_id: int) -> int:
    return await session.scalar(
        select(func.count()).where(
            Membership.project_id == project_id, Membership.role == Role.OWNER.value
        )
    )


def _role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise Invalid(f"A role is one of {', '.join(Role)}.", field="role") from None


@use_case
async def add_member(
    session: AsyncSession,
    actor: User,
    project_id: int,
    *,
    email: str,
    role: str,
    origin: audit.Origin = audit.NO_ORIGIN,
) -> Member:
    """Add an existing user, found by email address, with a role (audited: actor, member)."""
    project = await managed_project(session, actor, project_id)
    wanted = _role(role)
    if wanted is Role.OWNER and await role_in(session, actor, project.id) is not Role.OWNER:
        raise Forbidden("Only an owner can make someone an owner.")
    # An import's placeholder people are never members (decision 0029): merge them first.
    user = await session.scalar(
        select(User).where(User.email == email.strip().lower(), User.is_placeholder.is_(False))
    )
    if user is None:
        raise Invalid("No account uses that address; ask them to sign up first.", field="email")
    if await role_in(session, user, project.id) is not None:
        raise Invalid(f"{user.display_name} is a member already.", field="email")
    session.add(Membership(project_id=project.id, user_id=user.id, role=wanted.value))
    await record_activity(
        session, project, actor, "member.added", payload={"user": user.display_name, "role": role}
    )
    audit.record(
        session,
        audit.AuditAction.MEMBER_ADDED,
        actor=actor,
        subject=user,
        origin=origin,
        project=project.key,
        role=wanted.value,
    )
    return Member(user, wanted)


@use_case
async def change_role(
    session: AsyncSession,
    actor: User,
    project_id: int,
    user_id: int,
    role: str,
    *,
    origin: audit.Origin = audit.NO_ORIGIN,
) -> None:
    project = await managed_project(session, actor, project_id)
    wanted = _role(role)
    membership = await session.get(Membership, (project.id, user_id))
    if membership is None:
        raise NotFound("No such member.")
    actor_role = await role_in(session, actor, project.id)
    if Role.OWNER in (wanted, Role(membership.role)) and actor_role is not Role.OWNER:
        raise Forbidden("Only an owner can make or unmake an owner.")
    if (
        membership.role == Role.OWNER
        and wanted is not Role.OWNER
        and await _owner_count(session, project.id) == 1
    ):
        raise Invalid("A project needs an owner: make someone else owner first.", field="role")
    previous = membership.role
    membership.role = wanted.value
    await record_activity(
        session, project, actor, "member.role_changed", payload={"user_id": user_id, "role": role}
    )
    audit.record(
        session,
        audit.AuditAction.ROLE_CHANGED,
        actor=actor,
        subject=await session.get(User, user_id),
        origin=origin,
        project=project.key,
        role=wanted.value,
        previous_role=previous,
    )


@use_case
async def remove_member(
    session: AsyncSession,
    actor: User,
    project_id: int,
    user_id: int,
    *,
    origin: audit.Origin = audit.NO_ORIGIN,
) -> None:
    """Remove a member (admins), or leave (anyone, themselves). The last owner cannot go."""
    require_validated(actor)
    project = await readable_project(session, actor, project_id)
    if user_id != actor.id:
        project = await managed_project(session, actor, project_id)
    membership = await session.get(Membership, (project.id, user_id))
    if membership is None:
        raise NotFound("No such member.")
    if membership.role == Role.OWNER:
        if user_id != actor.id and await role_in(session, actor, project.id) is not Role.OWNER:
            raise Forbidden("Only an owner can remove an owner.")
        if await _owner_count(session, project.id) == 1:
            raise Invalid(
                "The last owner cannot leave: make someone else owner first.", field="role"
            )
    role = membership.role
    await session.delete(membership)
    await record_activity(session, project, actor, "member.removed", payload={"user_id": user_id})
    audit.record(
        session,
        audit.AuditAction.MEMBER_REMOVED,
        actor=actor,
        subject=await session.get(User, user_id),
        origin=origin,
        project=project.key,
        role=role,
    )
