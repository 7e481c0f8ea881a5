"""The audit log's pages: a person's own security log, and the admins' search and export
(a 404 to everyone else), driven as a browser would with the real routes."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from quart import Quart
from quart.typing import TestClientProtocol as Client
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app import create_app
from app.models import ApiToken, AuditEvent, User
from app.services import audit
from app.services.audit_views import browser_name
from tests.conftest import app_settings
from tests.factories import make_user
from tests.mailcatcher import MailCatcher
from tests.pages import PASSWORD, log_in, submit, text_of

FIREFOX = {
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "X-Forwarded-For": "203.0.113.9",  # behind our one proxy: the client's address
}


@pytest_asyncio.fixture
async def app(database_url: str, mailbox: MailCatcher) -> AsyncIterator[Quart]:
    """The app behind one trusted proxy, so that a test chooses the client's address."""
    settings = app_settings(database_url, mailbox, TRUST_PROXY_COUNT=1, TRUST_PROXY_ADDRESSES="*")
    app = create_app("testing", **settings)
    async with app.test_app() as test_app:
        yield test_app.app


async def person(app: Quart, session: AsyncSession, email: str, *, admin: bool = False) -> User:
    hashed = await app.extensions["account_settings"].hasher.hash(PASSWORD)
    user = await make_user(session, email=email, password_hash=hashed)
    if admin:
        await session.execute(update(User).where(User.id == user.id).values(is_admin=True))
        await session.commit()
    return user


async def test_my_security_log_shows_my_logins_and_failures_in_plain_words(
    app: Quart, client: Client, session: AsyncSession
) -> None:
    await person(app, session, "ann@example.com")
    await person(app, session, "bob@example.com")
    await submit(
        client, "/auth/login", {"email": "ann@example.com", "password": "wrong"}, headers=FIREFOX
    )
    await submit(client, "/auth/login", {"email": "bob@example.com", "password": "wrong"})
    response = await submit(
        client, "/auth/login", {"email": "ann@example.com", "password": PASSWORD}, headers=FIREFOX
    )
    assert response.status_code == 302
    page = await text_of(await client.get("/account/security-log"))
    assert "Signed in with a password from 203.0.113.9, Firefox" in page
    assert "A sign-in failed (wrong email or password) from 203.0.113.9, Firefox" in page
    assert "bob@example.com" not in page  # someone else's failure is not mine
    assert 'title="' in page and "just now" in page
    account = await text_of(await client.get("/account/"))
    assert 'href="/account/security-log"' in account


async def test_my_security_log_is_paged(app: Quart, client: Client, session: AsyncSession) -> None:
    ann = await person(app, session, "ann@example.com")
    for _ in range(60):
        await audit.record_refusal(session, audit.AuditAction.LOGIN_FAILED, actor=None, subject=ann)
    await log_in(client, "ann@example.com")
    first = await text_of(await client.get("/account/security-log"))
    assert first.count("<tr data-action=") == 50 and 'rel="next"' in first
    link = first.split('rel="next" href="')[1].split('"')[0].replace("&amp;", "&")
    second = await text_of(await client.get("/account/security-log" + link))
    assert second.count("<tr data-action=") == 11 and 'rel="next"' not in second
    # A garbled cursor is the first page, never a 500.
    garbled = await client.get("/account/security-log?before=99999999999999999999999")
    assert garbled.status_code == 200


async def test_the_security_log_needs_a_login(client: Client) -> None:
    response = await client.get("/account/security-log")
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]


ADMIN_PAGES = [
    "/admin/audit",
    "/admin/audit/",  # no redirect to the real page either
    "/admin/audit?action=login.",
    "/admin/audit/export.csv",
    "/admin/audit/export.jsonl?action=nope",
]


@pytest.mark.parametrize("path", ADMIN_PAGES)
async def test_the_admin_log_is_a_404_to_everyone_but_admins(
    app: Quart, client: Client, session: AsyncSession, path: str
) -> None:
    await person(app, session, "ann@example.com")
    assert (await client.get(path)).status_code == 404  # logged out
    assert (await client.get(path, headers={"Accept": "application/json"})).status_code == 404
    await log_in(client, "ann@example.com")
    assert (await client.get(path)).status_code == 404  # logged in, not an admin


async def admin_client(app: Quart, client: Client, session: AsyncSession) -> User:
    admin = await person(app, session, "root@example.com", admin=True)
    await log_in(client, "root@example.com")
    return admin


async def seed(session: AsyncSession) -> None:
    ann = await make_user(session, email="ann@example.com")
    bob = await make_user(session, email="bob@example.com")
    home, office = (
        audit.Origin("203.0.113.9", "Firefox/128"),
        audit.Origin("198.51.100.7", "curl/8"),
    )
    await audit.record_refusal(
        session, audit.AuditAction.LOGIN_FAILED, actor=None, subject=ann, origin=office
    )
    await audit.record_refusal(
        session,
        audit.AuditAction.TOKEN_CREATED,
        actor=bob,
        origin=audit.Origin("203.0.113.9", "=cmd|' /C calc'!A0"),
        token_name="@evil",
        scope="read",
    )
    await audit.record_refusal(session, audit.AuditAction.LOGOUT, actor=ann, origin=home)


async def test_the_admin_searches_by_person_action_and_address(
    app: Quart, client: Client, session: AsyncSession
) -> None:
    await seed(session)
    await admin_client(app, client, session)
    everything = await text_of(await client.get("/admin/audit"))
    assert everything.count("<tr data-action=") >= 4  # with the admin's own sign-in
    by_person = await text_of(await client.get("/admin/audit?person=ann@example.com"))
    assert by_person.count("<tr data-action=") == 2
    by_prefix = await text_of(await client.get("/admin/audit?action=login."))
    assert 'data-action="login.failed"' in by_prefix and 'data-action="logout"' not in by_prefix
    by_two = await text_of(await client.get("/admin/audit?action=logout&action=token.created"))
    assert by_two.count("<tr data-action=") == 2
    by_address = await text_of(await client.get("/admin/audit?address=198.51.100.7"))
    assert by_address.count("<tr data-action=") == 1
    # The export links keep the filters.
    assert 'href="/admin/audit/export.csv?action=logout&amp;action=token.created"' in by_two


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("since=2026-02-30", "Give a date as YYYY-MM-DD."),
        ("action=login.exploded", "Unknown action: login.exploded."),
        ("since=2026-05-02&until=2026-05-01", "The end date is before the start date."),
    ],
)
async def test_a_bad_filter_is_a_form_message_not_a_500(
    app: Quart, client: Client, session: AsyncSession, query: str, message: str
) -> None:
    await admin_client(app, client, session)
    response = await client.get(f"/admin/audit?{query}")
    assert response.status_code == 400
    page = await text_of(response)
    assert message in page and 'class="field-error"' in page
    assert "Export CSV" not in page
    assert (await client.get(f"/admin/audit/export.csv?{query}")).status_code == 400


async def test_the_csv_export_parses_back_keeps_the_filter_and_defuses_formulas(
    app: Quart, client: Client, session: AsyncSession
) -> None:
    await seed(session)
    await admin_client(app, client, session)
    response = await client.get("/admin/audit/export.csv?address=203.0.113.9")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="audit-')
    rows = list(csv.DictReader(io.StringIO(await text_of(response))))
    assert [row["action"] for row in rows] == ["logout", "token.created"]
    token = rows[1]
    assert token["user_agent"] == "'=cmd|' /C calc'!A0"
    assert json.loads(token["detail"]) == {"token_name": "@evil", "scope": "read"}
    assert token["actor_email"] == "bob@example.com"


async def test_the_json_lines_export_parses_back(
    app: Quart, client: Client, session: AsyncSession
) -> None:
    await seed(session)
    await admin_client(app, client, session)
    response = await client.get("/admin/audit/export.jsonl?action=token.")
    assert response.status_code == 200
    [record] = [json.loads(line) for line in (await text_of(response)).splitlines()]
    assert record["action"] == "token.created"
    assert record["detail"] == {"token_name": "@evil", "scope": "read"}
    assert record["user_agent"] == "=cmd|' /C calc'!A0"  # JSON is data, not a spreadsheet
    stored = await session.scalar(select(AuditEvent).where(AuditEvent.action == "token.created"))
    assert stored is not None and record["id"] == stored.id


async def test_pages_record_their_events_with_the_request_address(
    app: Quart, client: Client, session: AsyncSession
) -> None:
    """The routes pass the request's origin down: the token page and logout, end to end."""
    ann = await person(app, session, "ann@example.com")
    await submit(
        client, "/auth/login", {"email": "ann@example.com", "password": PASSWORD}, headers=FIREFOX
    )
    await submit(
        client, "/account/tokens", {"name": "CI", "scope": "read", "expires": ""}, headers=FIREFOX
    )
    await submit(client, "/auth/logout", headers=FIREFOX)
    events = list(await session.scalars(select(AuditEvent).order_by(AuditEvent.id)))
    assert [e.action for e in events] == ["login.succeeded", "token.created", "logout"]
    assert {(e.actor_id, e.client_address) for e in events} == {(ann.id, "203.0.113.9")}
    assert "Firefox" in events[2].user_agent


async def test_every_account_page_passes_the_request_address_to_its_audit_row(
    app: Quart, client: Client, session: AsyncSession, mailbox: MailCatcher
) -> None:
    """Sign-up, confirmation, the account page's changes and the reset, all through the
    routes: each row has the client's address and browser (the routes pass the origin)."""

    async def deliver() -> None:
        await app.extensions["mail_sender"].deliver_pending()

    def path_of(link: str) -> str:
        return "/" + link.split("/", 3)[3]

    async def go(path: str, form: dict[str, str] | None = None) -> None:
        response = await submit(client, path, form, headers=FIREFOX)
        assert response.status_code in (200, 201, 302), (path, response.status_code)

    await go(
        "/auth/signup", {"email": "ann@example.com", "display_name": "Ann", "password": PASSWORD}
    )
    await deliver()
    [confirm] = mailbox.to("ann@example.com")
    assert (await client.get(path_of(confirm.link()), headers=FIREFOX)).status_code == 302
    await go("/account/sessions/end-others")
    await go("/account/email", {"email": "ann2@example.com", "current_password": PASSWORD})
    await deliver()
    [change] = mailbox.to("ann2@example.com")
    assert (await client.get(path_of(change.link()), headers=FIREFOX)).status_code == 302
    new_password = "another good passphrase"
    await go("/account/password", {"current_password": PASSWORD, "new_password": new_password})
    await go("/auth/forgot", {"email": "ann2@example.com"})
    await deliver()
    [reset] = [m for m in mailbox.to("ann2@example.com") if "Reset" in m.subject]
    await go(path_of(reset.link()), {"password": "a third good passphrase"})
    made = await submit(client, "/account/tokens", {"name": "CI", "scope": "read"}, headers=FIREFOX)
    token_id = await session.scalar(select(ApiToken.id).where(ApiToken.name == "CI"))
    assert made.status_code == 201 and token_id is not None
    await go(f"/account/tokens/{token_id}/revoke")

    await session.rollback()  # a fresh read (SQLite keeps the snapshot of the last one)
    events = list(await session.scalars(select(AuditEvent).order_by(AuditEvent.id)))
    assert [e.action for e in events] == [
        "account.signed_up",
        "login.succeeded",
        "email.verified",
        "sessions.ended",
        "email.change_requested",
        "email.changed",
        "password.changed",
        "password.reset_requested",
        "password.reset",
        "login.succeeded",
        "token.created",
        "token.revoked",
    ]
    assert {(e.client_address, browser_name(e.user_agent)) for e in events} == {
        ("203.0.113.9", "Firefox")
    }
    assert [e.detail.get("method") for e in events if e.action == "login.succeeded"] == [
        "signup",
        "password_reset",
    ]


async def test_stored_values_are_escaped_on_both_pages(
    app: Quart, client: Client, session: AsyncSession
) -> None:
    root = await admin_client(app, client, session)
    await audit.record_refusal(
        session,
        audit.AuditAction.TOKEN_CREATED,
        actor=root,
        origin=audit.Origin("203.0.113.9", "<img src=x onerror=alert(1)>"),
        token_name="<script>alert(1)</script>",
        scope="read",
    )
    for path in ("/account/security-log", "/admin/audit"):
        page = await text_of(await client.get(path))
        assert "<script>alert(1)</script>" not in page and "<img src=x" not in page, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page, path
