"""The admin console over HTTP: a 404 to all but site admins on every URL, CSRF on every
POST, refusals flashed with nothing written, and a deactivation that refuses the person's
cookie, token and open stream at once."""

from __future__ import annotations

import re
from typing import Any

import pytest
from quart import Quart
from quart.typing import TestClientProtocol as Client
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app import create_app
from app.models import AuditEvent, Membership, OutboxMessage, User
from app.models.outbox import MailStatus
from app.outbound.mail.outbox import enqueue_mail
from app.services import api_tokens
from app.web.checks import settings_problems
from tests.conftest import app_settings
from tests.factories import make_project, make_user
from tests.live.test_stream import stream
from tests.mailcatcher import MailCatcher
from tests.pages import PASSWORD, csrf_token, log_in, submit, text_of
from tests.services.rows import rows_of


async def person(
    app: Quart, email: str, *, is_admin: bool = False, client: bool = True
) -> tuple[User, Client | None]:
    """An account with the test password (a site admin if asked), logged in on a client."""
    settings = app.extensions["account_settings"]
    async with app.extensions["database"].sessionmaker() as session:
        user = await make_user(session, email=email, display_name=email.split("@")[0].title())
        user.password_hash = await settings.hasher.hash(PASSWORD)
        user.is_admin = is_admin
        session.add(user)
        await session.commit()
        session.expunge(user)
    if not client:
        return user, None
    logged_in = app.test_client()
    assert (await log_in(logged_in, email)).status_code == 302
    return user, logged_in


def admin_paths(app: Quart) -> list[tuple[str, str]]:
    """Every URL of the console, with 1 for each id, and its methods."""
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("admin."):
            path = re.sub(r"<int(\([^)]*\))?:[a-z_]+>", "1", rule.rule)
            for method in sorted((rule.methods or set()) & {"GET", "POST"}):
                found.append((method, path))
    return found


async def flashed_after(client: Client, response: Any) -> str:
    assert response.status_code == 303, await text_of(response)
    return await text_of(await client.get(response.headers["Location"]))


@pytest.mark.parametrize("who", ["anonymous", "member"])
async def test_every_admin_url_is_a_404_to_everyone_but_site_admins(app: Quart, who: str) -> None:
    if who == "member":
        _, client = await person(app, "member@example.com")
    else:
        client = app.test_client()
    assert client is not None
    await person(app, "root@example.com", is_admin=True, client=False)
    paths = admin_paths(app)
    assert len(paths) >= 15
    token = await csrf_token(client)
    for method, path in paths:
        if method == "GET":
            response = await client.get(path)
        else:  # with the CSRF token: the 404 comes from the admin guard, not the CSRF check
            response = await client.post(path, form={"csrf_token": token, "admin": "1"})
        assert response.status_code == 404, (method, path)
    async with app.extensions["database"].sessionmaker() as session:
        assert [e.action for e in await rows_of(session, AuditEvent)] == (
            ["login.succeeded"] if who == "member" else []
        )


async def test_admins_get_the_console_and_a_header_link_others_do_not(app: Quart) -> None:
    _, root = await person(app, "root@example.com", is_admin=True)
    _, member = await person(app, "member@example.com")
    assert root is not None and member is not None
    home = await text_of(await root.get("/admin"))
    assert 'data-count="people">2<' in home
    assert 'href="/admin/audit"' in home
    for path in ("/admin/people", "/admin/configuration", "/admin/mail"):
        assert (await root.get(path)).status_code == 200
    assert "data-admin-link" in await text_of(await root.get("/account/"))
    assert "data-admin-link" not in await text_of(await member.get("/account/"))


async def test_a_deactivated_person_s_cookie_token_and_stream_are_refused_at_once(
    database_url: str, mailbox: MailCatcher
) -> None:
    # The periodic check would take an hour: only the deactivation's own signal can end the
    # stream; with no heartbeat for a minute, one that stays open fails the read's time-out.
    app = create_app(
        "testing",
        **app_settings(database_url, mailbox, SSE_RECHECK_SECONDS=3600, SSE_HEARTBEAT_SECONDS=60),
    )
    async with app.test_app():
        root_user, root = await person(app, "root@example.com", is_admin=True)
        bob_user, bob = await person(app, "bob@example.com")
        assert root is not None and bob is not None
        async with app.extensions["database"].sessionmaker() as session:
            await make_project(session, bob_user, key="LIVE")
            token = await api_tokens.create_token(session, bob_user, name="ci", scope="read")
        bearer = {"Authorization": f"Bearer {token.secret}"}
        assert (await bob.get("/api/v1/me", headers=bearer)).status_code == 200

        async with stream(bob, "/p/LIVE/events") as opened:
            assert not opened.ended
            page = await flashed_after(
                root, await submit(root, f"/admin/people/{bob_user.id}/deactivate")
            )
            assert "Deactivated" in page
            assert await opened.ends()
        assert app.extensions["broker"].subscriber_count == 0

        account = await bob.get("/account/")
        assert account.status_code == 302 and "/auth/login" in account.headers["Location"]
        assert (await bob.get("/api/v1/me", headers=bearer)).status_code == 401
        refused = await log_in(app.test_client(), "bob@example.com")
        assert refused.status_code == 400
        assert "This account is deactivated. Ask an admin." in await text_of(refused)

        # Reactivated, they log in again (the old cookie stays logged out).
        await flashed_after(root, await submit(root, f"/admin/people/{bob_user.id}/reactivate"))
        assert (await bob.get("/account/")).status_code == 302
        assert (await log_in(app.test_client(), "bob@example.com")).status_code == 302
        assert root_user.id != bob_user.id


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("yourself", "You cannot deactivate your own account"),
        ("last admin", "The site needs an admin"),
        ("unknown", "No such person."),
    ],
)
async def test_a_refused_action_is_flashed_and_writes_nothing(
    app: Quart, case: str, message: str
) -> None:
    root_user, root = await person(app, "root@example.com", is_admin=True)
    assert root is not None
    path = {
        "yourself": (f"/admin/people/{root_user.id}/deactivate", {}),
        "last admin": (f"/admin/people/{root_user.id}/admin", {"admin": "0"}),
        "unknown": ("/admin/people/999999/deactivate", {}),
    }[case]
    page = await flashed_after(root, await submit(root, *path))
    assert message in page
    async with app.extensions["database"].sessionmaker() as session:
        assert [e.action for e in await rows_of(session, AuditEvent)] == ["login.succeeded"]
        [user] = await rows_of(session, User)
        assert (user.is_admin, user.deactivated_at) == (True, None)


async def test_a_post_without_the_csrf_token_is_refused(app: Quart) -> None:
    _, root = await person(app, "root@example.com", is_admin=True)
    bob, _ = await person(app, "bob@example.com", client=False)
    assert root is not None
    response = await root.post(f"/admin/people/{bob.id}/deactivate", form={})
    assert response.status_code == 403
    async with app.extensions["database"].sessionmaker() as session:
        assert (await session.get(User, bob.id)).deactivated_at is None


async def test_people_search_person_page_and_making_an_admin(app: Quart) -> None:
    _, root = await person(app, "root@example.com", is_admin=True)
    bob, _ = await person(app, "bob@example.com")
    assert root is not None
    listing = await text_of(await root.get("/admin/people?q=BOB"))
    assert "bob@example.com" in listing and "root@example.com" not in listing
    page = await text_of(await root.get(f"/admin/people/{bob.id}"))
    assert "data-sessions>1<" in page and "data-tokens>0<" in page
    assert (await root.get("/admin/people/999999")).status_code == 404
    assert (await root.get("/admin/people/99999999999999")).status_code == 404
    assert (await root.get("/admin/projects/99999999999999")).status_code == 404
    made = await flashed_after(
        root, await submit(root, f"/admin/people/{bob.id}/admin", {"admin": "1"})
    )
    assert "They are a site admin now." in made
    reset = await flashed_after(
        root, await submit(root, f"/admin/people/{bob.id}/two-factor/reset")
    )
    assert "second factor is removed" in reset
    async with app.extensions["database"].sessionmaker() as session:
        assert (await session.get(User, bob.id)).is_admin
        actions = [e.action for e in await rows_of(session, AuditEvent)]
        assert actions[-2:] == ["admin.admin_granted", "admin.two_factor_reset"]


async def test_projects_list_and_transfer(app: Quart, session: AsyncSession) -> None:
    _, root = await person(app, "root@example.com", is_admin=True)
    ann, _ = await person(app, "ann@example.com", client=False)
    carl, _ = await person(app, "carl@example.com", client=False)
    assert root is not None
    project = await make_project(session, ann, key="HIDDEN")  # private
    listing = await text_of(await root.get("/admin/projects?q=hid"))
    assert "HIDDEN" in listing and "private" in listing
    page = await flashed_after(
        root,
        await submit(root, f"/admin/projects/{project.id}/transfer", {"owner": "nobody@x.org"}),
    )
    assert "No account has that address or handle." in page
    page = await flashed_after(
        root,
        await submit(root, f"/admin/projects/{project.id}/transfer", {"owner": "carl@example.com"}),
    )
    assert "Transferred to carl@example.com" in page
    assert "carl@example.com" in page  # the project's owners
    roles = {
        m.user_id: m.role
        for m in await session.scalars(select(Membership).execution_options(populate_existing=True))
    }
    assert roles == {ann.id: "admin", carl.id: "owner"}


async def test_the_mail_outbox_lists_failed_mail_and_retries_it(
    app: Quart, session: AsyncSession
) -> None:
    _, root = await person(app, "root@example.com", is_admin=True)
    assert root is not None
    message = enqueue_mail(
        session,
        to_address="bob@example.com",
        template="verify_email",
        name="Bob",
        link="http://issues.test/x",
        base_url="http://issues.test",
    )
    await session.commit()
    message.status, message.last_error = MailStatus.FAILED.value, "550 mailbox unavailable"
    await session.commit()
    listing = await text_of(await root.get("/admin/mail?status=failed"))
    assert "550 mailbox unavailable" in listing
    assert "550 mailbox" not in await text_of(await root.get("/admin/mail?status=pending"))
    page = await flashed_after(root, await submit(root, f"/admin/mail/{message.id}/retry"))
    assert "will be sent again" in page
    [row] = await rows_of(session, OutboxMessage)
    assert (row.status, row.attempts) == ("pending", 0)
    page = await flashed_after(root, await submit(root, "/admin/webhooks/999999/retry"))
    assert "No such delivery." in page


async def test_the_configuration_page_shows_the_check_s_findings_and_no_secret(
    database_url: str, mailbox: MailCatcher
) -> None:
    secret = "a-secret-value-that-must-never-be-shown-0123456789"
    app = create_app(
        "testing",
        **app_settings(
            database_url, mailbox, SECRET_KEY=secret, SIGNUP_MODE="domains", SIGNUP_DOMAINS=""
        ),
    )
    async with app.test_app():
        _, root = await person(app, "root@example.com", is_admin=True)
        assert root is not None
        page = await text_of(await root.get("/admin/configuration"))
        expected = await settings_problems("testing", app.config)
        assert [p.key for p in expected] == ["SIGNUP_DOMAINS"]
        for problem in expected:
            assert f"<code>{problem.key}</code>: {problem.message}" in page
        assert 'data-severity="warning"' in page
        assert secret not in page
