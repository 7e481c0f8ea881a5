"""The admin console's projects (decision 0022): every project, private ones too, with its
owners and sizes, and the transfer of its ownership."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Invalid, NotFound
from app.models import Attachment, Issue, Membership, Project, Role, User
from app.services import audit
from app.services.activity import record_activity
from app.services.admin import Page, fetch_page, require_acting_admin, search_text
from app.services.transaction import use_case


@dataclass(frozen=True)
class ProjectRow:
    project: Project
    owners: list[User]
    members: int
    issues: int
    attachment_bytes: int


def _project_sizes() -> tuple[Any, Any, Any]:
    members = (
        select(func.count())
        .select_from(Membership)
        .where(Membership.project_id == Project.id)
        .correlate(Project)
        .scalar_subquery()
    )
    issue_count = (
        select(func.count())
        .select_from(Issue)
        .where(Issue.project_id == Project.id)
        .correlate(Project)
        .scalar_subquery()
    )
    attachment_bytes = (
        select(func.coalesce(func.sum(Attachment.size), 0))
        .join(Issue, Issue.id == Attachment.issue_id)
        .where(Issue.project_id == Project.id)
        .correlate(Project)
        .scalar_subquery()
    )
    return members, issue_count, attachment_bytes


async def _owners(session: AsyncSession, project_ids: list[int]) -> dict[int, list[User]]:
    owners: dict[int, list[User]] = {project_id: [] for project_id in project_ids}
    if project_ids:
        rows = await session.execute(
            select(Membership.project_id, User)
            .join(User, User.id == Membership.user_id)
            .where(Membership.project_id.in_(project_ids), Membership.role == Role.OWNER.value)
            .order_by(User.display_name)
        )
        for project_id, user in rows:
            owners[project_id].append(user)
    return owners


async def projects_page(
    session: AsyncSession, query: str = "", number: int = 1
) -> Page[ProjectRow]:
    """Every project, private ones too, whose key or name contains `query`, by key, with its
    owners and sizes."""
    members, issue_count, attachment_bytes = _project_sizes()
    statement = select(Project, members, issue_count, attachment_bytes).order_by(Project.key)
    if text := search_text(query):
        statement = statement.where(
            or_(
                Project.key.icontains(text, autoescape=True),
                Project.name.icontains(text, autoescape=True),
            )
        )
    rows, has_next = await fetch_page(session, statement, number)
    owners = await _owners(session, [row[0].id for row in rows])
    return Page(
        [ProjectRow(p, owners[p.id], m or 0, i or 0, int(b or 0)) for p, m, i, b in rows],
        number,
        has_next,
    )


async def project_row(session: AsyncSession, project_id: int) -> ProjectRow:
    members, issue_count, attachment_bytes = _project_sizes()
    row = (
        await session.execute(
            select(Project, members, issue_count, attachment_bytes).where(Project.id == project_id)
        )
    ).one_or_none()
    if row is None:
        raise NotFound("No such project.")
    project, member_count, issues, size = row
    owners = await _owners(session, [project.id])
    return ProjectRow(project, owners[project.id], member_count or 0, issues or 0, int(size or 0))


async def _user_by_address_or_handle(session: AsyncSession, who: str) -> User | None:
    who = who.strip().lower().removeprefix("@")
    if not who:
        return None
    return await session.scalar(select(User).where(or_(User.email == who, User.handle == who)))


@use_case
async def transfer_project(
    session: AsyncSession,
    actor: User,
    project_id: int,
    new_owner: str,
    origin: audit.Origin = audit.NO_ORIGIN,
) -> Project:
    """Make `new_owner` (an address or a handle of an active account) the project's owner.
    Its owners until now stay on as admins of the project; the project's log records each
    role change, the audit log the transfer."""
    await require_acting_admin(session, actor)
    project = await session.scalar(
        select(Project).where(Project.id == project_id).with_for_update()
    )
    if project is None:
        raise NotFound("No such project.")
    user = await _user_by_address_or_handle(session, new_owner)
    if user is None:
        raise Invalid("No account has that address or handle.", field="owner")
    if user.deactivated_at is not None:
        raise Invalid(f"{user.display_name} is deactivated.", field="owner")
    memberships = {
        membership.user_id: membership
        for membership in await session.scalars(
            select(Membership).where(Membership.project_id == project.id)
        )
    }
    theirs = memberships.get(user.id)
    if theirs is not None and theirs.role == Role.OWNER.value:
        raise Invalid(f"{user.display_name} owns this project already.", field="owner")
    former = sorted(
        member_id
        for member_id, membership in memberships.items()
        if membership.role == Role.OWNER.value
    )
    for member_id in former:
        memberships[member_id].role = Role.ADMIN.value
        await record_activity(
            session,
            project,
            actor,
            "member.role_changed",
            payload={"user_id": member_id, "role": Role.ADMIN.value},
        )
    if theirs is None:
        session.add(Membership(project_id=project.id, user_id=user.id, role=Role.OWNER.value))
        await record_activity(
            session,
            project,
            actor,
            "member.added",
            payload={"user": user.display_name, "role": Role.OWNER.value},
        )
    else:
        theirs.role = Role.OWNER.value
        await record_activity(
            session,
            project,
            actor,
            "member.role_changed",
            payload={"user_id": user.id, "role": Role.OWNER.value},
        )
    audit.record(
        session,
        audit.AuditAction.ADMIN_TRANSFERRED_PROJECT,
        actor=actor,
        subject=user,
        origin=origin,
        project=project.key,
        former_owners=former,
    )
    return project
