"""Personal access tokens: made on the account page, shown once, scoped, expiring, revocable;
and the browser's session on the API, under the same CSRF rules as the pages."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from quart import Quart
from quart.typing import TestClientProtocol as Client
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.errors import NotFound
from app.models import ApiToken, Issue, User
from app.security import token_digest
from app.services import api_tokens
from tests.api.conftest import ApiWorld, bearer
from tests.pages import PASSWORD, csrf_token, log_in, submit, text_of

SECRET = re.compile(r"data-token-secret>(iss_[A-Za-z0-9_-]+)<")


async def set_password(app: Quart, session: AsyncSession, world: ApiWorld, who: str) -> None:
    user = world.people[who]
    hashed = await app.extensions["account_settings"].hasher.hash(PASSWORD)
    await session.execute(update(User).where(User.id == user.id).values(password_hash=hashed))
    await session.commit()


async def test_a_token_is_made_on_the_account_page_shown_once_and_revoked(
    app: Quart, client: Client, session: AsyncSession, world: ApiWorld
) -> None:
    await set_password(app, session, world, "member")
    await log_in(client, "member@example.com")
    made = await submit(
        client, "/account/tokens", {"name": "CI", "scope": "write", "expires": "30"}
    )
    page = await text_of(made)
    assert made.status_code == 201
    secret = SECRET.search(page).group(1)  # type: ignore[union-attr]
    assert made.headers["Cache-Control"] == "no-store"

    # Stored as a hash with a recognisable prefix; the page never shows the secret again.
    row = await session.scalar(select(ApiToken).where(ApiToken.name == "CI"))
    assert row is not None and row.token_digest == token_digest(secret)
    assert secret.startswith(row.prefix) and secret not in row.prefix
    assert (row.expires_at - utcnow()).days == 29
    listing = await text_of(await client.get("/account/"))
    assert row.prefix in listing and secret not in listing and "never" in listing

    me = await client.get("/api/v1/me", headers=bearer(secret))
    assert me.status_code == 200 and (await me.get_json())["token_scope"] == "write"
    listing = await text_of(await client.get("/account/"))
    assert "never</td>" not in listing.split(row.prefix)[1].split("</tr>")[0].split("</td>")[3]

    revoked = await submit(client, f"/account/tokens/{row.id}/revoke")
    assert revoked.status_code == 302
    refused = await client.get("/api/v1/me", headers=bearer(secret))
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"] == 'Bearer realm="issues"'
    assert (await refused.get_json())["error"]["code"] == "unauthorized"


async def test_the_account_page_refuses_a_bad_token_request(
    app: Quart, client: Client, session: AsyncSession, world: ApiWorld
) -> None:
    await set_password(app, session, world, "member")
    await log_in(client, "member@example.com")
    refused = await submit(client, "/account/tokens", {"name": "", "scope": "admin"})
    assert refused.status_code == 400 and "A token needs a name" in await text_of(refused)
    refused = await submit(
        client, "/account/tokens", {"name": "x", "scope": "read", "expires": "0"}
    )
    assert refused.status_code == 400
    assert await session.scalar(select(ApiToken.id).where(ApiToken.name == "x")) is None


async def test_someone_elses_token_cannot_be_revoked(
    session: AsyncSession, world: ApiWorld
) -> None:
    theirs = await session.scalar(
        select(ApiToken).where(ApiToken.user_id == world.people["owner"].id)
    )
    assert theirs is not None
    with pytest.raises(NotFound):
        await api_tokens.revoke_token(session, world.people["member"], theirs.id)


async def test_an_expired_token_is_refused(
    client: Client, session: AsyncSession, world: ApiWorld
) -> None:
    made = await api_tokens.create_token(
        session, world.people["member"], name="short", scope="read", expires_in_days=1
    )
    assert (await client.get("/api/v1/me", headers=bearer(made.secret))).status_code == 200
    await session.execute(
        update(ApiToken)
        .where(ApiToken.id == made.token.id)
        .values(expires_at=utcnow() - timedelta(seconds=1))
    )
    await session.commit()
    assert (await client.get("/api/v1/me", headers=bearer(made.secret))).status_code == 401
    assert made.token.id not in [
        t.id for t in await api_tokens.active_tokens(session, made.token.user_id)
    ]


async def test_last_use_is_written_at_most_once_a_minute(
    client: Client, session: AsyncSession, world: ApiWorld
) -> None:
    digest = token_digest(world.read_token)

    async def last_use() -> object:
        await session.commit()  # a new snapshot: see what the API wrote
        return await session.scalar(
            select(ApiToken.last_used_at).where(ApiToken.token_digest == digest)
        )

    assert await last_use() is None
    await client.get("/api/v1/me", headers=bearer(world.read_token))
    first = await last_use()
    assert first is not None
    await client.get("/api/v1/me", headers=bearer(world.read_token))
    assert await last_use() == first
    await session.execute(
        update(ApiToken)
        .where(ApiToken.token_digest == digest)
        .values(last_used_at=utcnow() - timedelta(minutes=2))
    )
    await session.commit()
    await client.get("/api/v1/me", headers=bearer(world.read_token))
    assert await last_use() > first  # type: ignore[operator]


async def test_a_read_token_reads_and_changes_nothing(
    client: Client, session: AsyncSession, world: ApiWorld
) -> None:
    auth = bearer(world.read_token)
    assert (await client.get("/api/v1/issues/WEB-1", headers=auth)).status_code == 200
    refused = await client.post("/api/v1/projects/WEB/issues", json={"title": "x"}, headers=auth)
    assert refused.status_code == 403
    assert "may only read" in (await refused.get_json())["error"]["message"]
    assert await session.scalar(select(Issue.id).where(Issue.title == "x")) is None


async def test_unknown_and_malformed_credentials_are_401(client: Client, world: ApiWorld) -> None:
    for header in ("Bearer iss_nothing", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer nope"):
        response = await client.get("/api/v1/projects", headers={"Authorization": header})
        assert response.status_code == 401, header
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_the_browser_session_uses_the_api_with_the_csrf_token(
    app: Quart, client: Client, session: AsyncSession, world: ApiWorld
) -> None:
    await set_password(app, session, world, "member")
    await log_in(client, "member@example.com")
    me = await (await client.get("/api/v1/me")).get_json()
    assert (me["auth"], me["token_scope"]) == ("session", None)

    forged = await client.post("/api/v1/projects/WEB/issues", json={"title": "forged"})
    assert forged.status_code == 403
    assert (await forged.get_json())["error"]["code"] == "forbidden"
    token = await csrf_token(client)
    made = await client.post(
        "/api/v1/projects/WEB/issues", json={"title": "ours"}, headers={"X-CSRF-Token": token}
    )
    assert made.status_code == 201
    cross_site = await client.post(
        "/api/v1/projects/WEB/issues",
        json={"title": "cross"},
        headers={"X-CSRF-Token": token, "Sec-Fetch-Site": "cross-site"},
    )
    assert cross_site.status_code == 403
    titles = set(await session.scalars(select(Issue.title)))
    assert "ours" in titles and not {"forged", "cross"} & titles


async def test_an_unconfirmed_account_reads_but_changes_nothing(
    app: Quart, client: Client, session: AsyncSession, world: ApiWorld
) -> None:
    await set_password(app, session, world, "unvalidated")
    await log_in(client, "unvalidated@example.com")
    assert (await client.get("/api/v1/issues/WEB-1")).status_code == 200
    refused = await client.post(
        "/api/v1/projects/WEB/issues",
        json={"title": "x"},
        headers={"X-CSRF-Token": await csrf_token(client)},
    )
    assert refused.status_code == 403
    assert "Confirm your email" in (await refused.get_json())["error"]["message"]
