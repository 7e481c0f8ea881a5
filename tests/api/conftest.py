"""A world for the API tests: people in every role, a private and a public project, tokens."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest_asyncio
from quart import Quart
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Issue, Project, Role, User
from app.services import api_tokens
from tests.factories import add_member, make_issue, make_project, make_user

ROLES = ("owner", "admin", "member", "viewer")


@dataclass
class ApiWorld:
    people: dict[str, User]
    project: Project  # private: WEB
    public: Project  # public: PUB
    issue: Issue  # WEB-1
    public_issue: Issue  # PUB-1
    # A read-write token per person, and a read-only one for the member.
    tokens: dict[str, str] = field(default_factory=dict)
    read_token: str = ""

    def auth(self, who: str) -> dict[str, str]:
        return bearer(self.tokens[who])


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def build_api_world(session: AsyncSession) -> ApiWorld:
    people = {name: await make_user(session, email=f"{name}@example.com") for name in ROLES}
    people["outsider"] = await make_user(session, email="outsider@example.com")
    people["unvalidated"] = await make_user(
        session, email="unvalidated@example.com", validated=False
    )
    owner = people["owner"]
    project = await make_project(session, owner, key="WEB")
    public = await make_project(session, owner, key="PUB", is_public=True)
    for role in ("admin", "member", "viewer"):
        await add_member(session, project, people[role], Role(role))
        await add_member(session, public, people[role], Role(role))
    await add_member(session, project, people["unvalidated"], Role.MEMBER)
    issue = await make_issue(session, owner, project, title="First issue")
    public_issue = await make_issue(session, owner, public, title="Public roadmap")
    world = ApiWorld(people, project, public, issue, public_issue)
    for name, user in people.items():
        if name == "unvalidated":
            # An unconfirmed account cannot make tokens; it can still log in (tests do that).
            continue
        world.tokens[name] = (
            await api_tokens.create_token(session, user, name="tests", scope="write")
        ).secret
    world.read_token = (
        await api_tokens.create_token(session, people["member"], name="reader", scope="read")
    ).secret
    # Detached: tests end their read snapshots with a rollback, which must not expire these.
    session.expunge_all()
    return world


@pytest_asyncio.fixture
async def world(app: Quart, session: AsyncSession) -> ApiWorld:
    return await build_api_world(session)
