"""Who may see and change a project: the one place that answers it for every use case."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Forbidden, NotFound
from app.models import Membership, Project, Role, User


async def role_in(session: AsyncSession, user: User | None, project_id: int) -> Role | None:
    if user is None:
        return None
    role = await session.scalar(
        select(Membership.role).where(
            Membership.project_id == project_id, Membership.user_id == user.id
        )
    )
    return Role(role) if role else None


async def readable_project(session: AsyncSession, user: User | None, project_id: int) -> Project:
    """The project if `user` may read it. A private project is NotFound to outsiders, never
    Forbidden, so that its existence does not leak."""
    project = await session.get(Project, project_id)
    if project is None:
        raise NotFound("No such project.")
    if project.is_public and user is not None:
        return project
    if await role_in(session, user, project_id) is None:
        raise NotFound("No such project.")
    return project


def require_validated(user: User) -> None:
    """Until its address is validated, an account may read but not change anything."""
    if user.email_verified_at is None:
        raise Forbidden("Confirm your email address first: use the link we sent you.")


async def writable_project(session: AsyncSession, user: User, project_id: int) -> Project:
    """The project if `user` may create and edit its issues."""
    require_validated(user)
    project = await readable_project(session, user, project_id)
    role = await role_in(session, user, project_id)
    if role is None or not role.can_write_issues:
        raise Forbidden("Only members of this project can change its issues.")
    if project.archived_at is not None:
        raise Forbidden("This project is archived; it can be read but not changed.")
    return project


async def may_write(session: AsyncSession, user: User | None, project: Project) -> bool:
    """Whether `user` may create and edit the project's issues (for showing the controls)."""
    if user is None or user.email_verified_at is None or project.archived_at is not None:
        return False
    role = await role_in(session, user, project.id)
    return role is not None and role.can_write_issues
