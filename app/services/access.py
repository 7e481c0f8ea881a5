"""Who may see and change a project: the one place that answers it for every use case."""

from __future__ import annotations

from sqlalchemy import and_, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import transaction_memo
from app.errors import Forbidden, NotFound
from app.models import Membership, Project, Role, User

# A page asks for the viewer's role several times (to read, then to offer edits): answers are
# remembered until the transaction writes anything (a flush) or ends.
_ROLES = "roles"


async def role_in(session: AsyncSession, user: User | None, project_id: int) -> Role | None:
    if user is None:
        return None
    known: dict[tuple[int, int], Role | None] = transaction_memo(session, _ROLES)
    key = (user.id, project_id)
    if key not in known:
        role = await session.scalar(
            select(Membership.role).where(
                Membership.project_id == project_id, Membership.user_id == user.id
            )
        )
        known[key] = Role(role) if role else None
    return known[key]


async def readable_project(session: AsyncSession, user: User | None, project_id: int) -> Project:
    """The project if `user` may read it: a public one to anyone (the pages ask for a login
    first; the API serves anonymous reads), a private one to its members. A private project is
    NotFound to outsiders, never Forbidden, so that its existence does not leak."""
    project = await session.get(Project, project_id)
    if project is None:
        raise NotFound("No such project.")
    if project.is_public:
        return project
    if await role_in(session, user, project_id) is None:
        raise NotFound("No such project.")
    return project


# The project and the viewer's role in it, in one row: the first query of every project page.
# Built once, with the viewer as a parameter (None matches no membership): building a statement
# costs more than running it.
PROJECT_WITH_ROLE = (
    select(Project, Membership.role.label("role"))
    .outerjoin(
        Membership,
        and_(Membership.project_id == Project.id, Membership.user_id == bindparam("viewer_id")),
    )
    # Fresh even if this request loaded it before: pages key what they keep on its counters.
    .execution_options(populate_existing=True)
)
PROJECT_BY_KEY = PROJECT_WITH_ROLE.where(Project.key == bindparam("project_key"))


async def project_by_key(
    session: AsyncSession, user: User | None, key: str, *, missing: str
) -> Project:
    """The project called `key` if `user` may read it, else NotFound(`missing`). One query: the
    viewer's role comes with the row and is remembered for the later checks."""
    parameters = {"viewer_id": user.id if user else None, "project_key": key.upper()}
    row = (await session.execute(PROJECT_BY_KEY, parameters)).one_or_none()
    if row is None:
        raise NotFound(missing)
    project = row[0]
    await require_readable(session, user, project, row.role, missing=missing)
    return project


async def require_readable(
    session: AsyncSession, user: User | None, project: Project, role: str | None, *, missing: str
) -> None:
    """NotFound(`missing`) unless `user` may read `project`, whose `role` for them was read with
    it (PROJECT_WITH_ROLE); the role is remembered for the checks that follow."""
    if user is not None:
        roles: dict[tuple[int, int], Role | None] = transaction_memo(session, _ROLES)
        roles[(user.id, project.id)] = Role(role) if role else None
    if not project.is_public and await role_in(session, user, project.id) is None:
        raise NotFound(missing)


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


async def managed_project(session: AsyncSession, user: User, project_id: int) -> Project:
    """The project if `user` may change its settings and members (owner or admin)."""
    require_validated(user)
    project = await readable_project(session, user, project_id)
    role = await role_in(session, user, project_id)
    if role is None or not role.can_manage_project:
        raise Forbidden("Only the project's owners and admins can change its settings.")
    return project


async def may_write(session: AsyncSession, user: User | None, project: Project) -> bool:
    """Whether `user` may create and edit the project's issues (for showing the controls)."""
    if user is None or user.email_verified_at is None or project.archived_at is not None:
        return False
    role = await role_in(session, user, project.id)
    return role is not None and role.can_write_issues


async def readers_among(session: AsyncSession, project_id: int, user_ids: set[int]) -> set[int]:
    """Which of these users may read the project now (readable_project's rule, for many)."""
    project = await session.get(Project, project_id, populate_existing=True)
    if project is None:
        return set()
    if project.is_public:
        return set(user_ids)
    wanted, readers = sorted(user_ids), set()
    for start in range(0, len(wanted), 500):
        readers.update(
            await session.scalars(
                select(Membership.user_id).where(
                    Membership.project_id == project_id,
                    Membership.user_id.in_(wanted[start : start + 500]),
                )
            )
        )
    return readers
