"""Creating projects; the creator becomes the owner."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Conflict, Invalid
from app.models import Membership, Project, Role, User, WorkflowStatus
from app.models.issue import DEFAULT_WORKFLOW
from app.services.access import require_validated
from app.services.activity import record_activity
from app.services.transaction import use_case

PROJECT_KEY = re.compile(r"[A-Z][A-Z0-9]{1,9}")


def normalise_key(key: str) -> str:
    key = key.strip().upper()
    if not PROJECT_KEY.fullmatch(key):
        raise Invalid(
            "A project key is 2 to 10 letters or digits, starting with a letter (such as WEB).",
            field="key",
        )
    return key


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
    """Create a project owned by `creator`. Raises Invalid for bad fields, Conflict for a taken
    key; nothing is written then."""
    require_validated(creator)
    key = normalise_key(key)
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise Invalid("A project needs a name of at most 100 characters.", field="name")
    if await session.scalar(select(Project.id).where(Project.key == key)) is not None:
        raise Conflict(f"The key {key} is taken by another project.", field="key")

    project = Project(key=key, name=name, description=description.strip(), is_public=is_public)
    session.add(project)
    try:
        await session.flush()
        session.add(Membership(project_id=project.id, user_id=creator.id, role=Role.OWNER.value))
        session.add_all(
            WorkflowStatus(project_id=project.id, name=name, category=category, position=position)
            for position, (name, category) in enumerate(DEFAULT_WORKFLOW)
        )
        await record_activity(
            session, project, creator, "project.created", payload={"key": key, "name": name}
        )
        await session.commit()
    except IntegrityError as error:
        # Another request took the key between our check and our insert.
        raise Conflict(f"The key {key} is taken by another project.", field="key") from error
    # The counter UPDATE bypassed the ORM; re-read so the object matches the row.
    await session.refresh(project)
    return project
