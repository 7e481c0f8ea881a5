"""Two-factor through the pages: enrolment on the account page, the second step of a login,
recovery codes, disabling, and a password reset that keeps two-factor on."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from quart import Quart
from sqlalchemy import select

from app import create_app
from app.models import AuditEvent, AuthSession, User
from app.services import two_factor
from tests.conftest import app_settings
from tests.mailcatcher import MailCatcher
from tests.pages import PASSWORD, log_in, sign_up, submit, text_of
from tests.services.rows import signed_links
from tests.totp import code_at, steady_step

SECRET = re.compile(r"data-totp-secret>([A-Z2-7]+)<")
CODES = re.compile(r"<li><code>([a-z2-9-]{19})</code></li>")


async def is_logged_in(client) -> bool:
    return (await client.get("/account/")).status_code == 200


async def enrol(client) -> tuple[str, list[str]]:
    """Turn two-factor on from the account page as Ann would: her secret and recovery codes."""
    page = await text_of(await submit(client, "/account/two-factor/enable"))
    assert "<svg" in page and "QR code for your authenticator app" in page
    [secret] = SECRET.findall(page)
    steady_step()
    done = await submit(client, "/account/two-factor/confirm", {"code": code_at(secret, -1)})
    assert done.status_code == 201
    codes = CODES.findall(await text_of(done))
    assert len(codes) == 10
    return secret, codes


async def signed_up_with_two_factor(client) -> tuple[str, list[str]]:
    await sign_up(client, "ann@example.com")
    secret, codes = await enrol(client)
    await submit(client, "/auth/logout")
    return secret, codes


async def audit_actions(app: Quart) -> list[tuple[str, dict]]:
    async with app.extensions["database"].sessionmaker() as session:
        events = await session.scalars(select(AuditEvent).order_by(AuditEvent.id))
        return [(event.action, event.detail) for event in events]


async def test_enrolment_from_the_account_page(app: Quart, client) -> None:
    await sign_up(client, "ann@example.com")
    account = await text_of(await client.get("/account/"))
    assert "Two-factor authentication" in account and "Enable two-factor" in account

    enrolling = await submit(client, "/account/two-factor/enable")
    assert enrolling.headers["Cache-Control"] == "no-store"  # the secret is kept by no cache
    page = await text_of(enrolling)
    [secret] = SECRET.findall(page)
    assert f"secret={secret}" not in page  # the URI is only in the QR code's modules
    # A pending enrolment: still off, and a wrong code shows the same QR code again.
    assert "Enable two-factor" in await text_of(await client.get("/account/"))
    wrong = await submit(client, "/account/two-factor/confirm", {"code": "000000"})
    assert wrong.status_code == 400
    wrong_page = await text_of(wrong)
    assert "not right" in wrong_page and SECRET.findall(wrong_page) == [secret]
    assert 'autocomplete="one-time-code"' in wrong_page and 'inputmode="numeric"' in wrong_page

    steady_step()
    done = await submit(client, "/account/two-factor/confirm", {"code": code_at(secret)})
    assert done.status_code == 201 and done.headers["Cache-Control"] == "no-store"
    shown = await text_of(done)
    codes = CODES.findall(shown)
    assert len(codes) == 10 and 'download="issues-recovery-codes.txt"' in shown
    account = await text_of(await client.get("/account/"))
    assert "On" in account and "10 recovery codes left" in account
    assert not any(code in account for code in codes)  # shown once
    assert ("totp.enabled", {}) in await audit_actions(app)


async def test_login_asks_for_the_code_and_keeps_the_next_page(app: Quart, client) -> None:
    secret, _ = await signed_up_with_two_factor(client)
    response = await log_in(client, "ann@example.com", next="/projects/new?x=1", remember="on")
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/auth/two-factor"
    # The password alone opens nothing: no page, no API through the cookie.
    assert not await is_logged_in(client)
    assert (await client.get("/api/v1/me")).status_code == 401
    page = await text_of(await client.get("/auth/two-factor"))
    assert 'autocomplete="one-time-code"' in page and "Use a recovery code instead" in page

    wrong = await submit(client, "/auth/two-factor", {"code": "000000"})
    assert wrong.status_code == 400 and "not right" in await text_of(wrong)
    assert not await is_logged_in(client)

    steady_step()
    code = code_at(secret)
    done = await submit(client, "/auth/two-factor", {"code": code})
    assert done.status_code == 302 and done.headers["Location"] == "/projects/new?x=1"
    assert await is_logged_in(client)
    async with app.extensions["database"].sessionmaker() as session:
        logins = list(await session.scalars(select(AuthSession).order_by(AuthSession.id)))
    assert logins[-1].remember  # "remember me" was held with the password
    logged = await audit_actions(app)
    assert ("login.succeeded", {"method": "totp"}) in logged
    assert ("totp.failed", {"reason": "wrong_code"}) in logged

    # The same code again, in another login: refused as replayed.
    await submit(client, "/auth/logout")
    await log_in(client, "ann@example.com")
    replayed = await submit(client, "/auth/two-factor", {"code": code})
    assert replayed.status_code == 400 and "used already" in await text_of(replayed)


async def test_a_recovery_code_signs_in_once(app: Quart, client) -> None:
    _, codes = await signed_up_with_two_factor(client)
    await log_in(client, "ann@example.com")
    assert "authenticator app instead" in await text_of(
        await client.get("/auth/two-factor/recovery")
    )
    done = await submit(client, "/auth/two-factor/recovery", {"code": codes[0]})
    assert done.status_code == 302
    assert "9 left" in await text_of(await client.get("/"))
    assert await is_logged_in(client)
    await submit(client, "/auth/logout")

    await log_in(client, "ann@example.com")
    again = await submit(client, "/auth/two-factor/recovery", {"code": codes[0]})
    assert again.status_code == 400 and not await is_logged_in(client)
    logged = await audit_actions(app)
    assert ("login.succeeded", {"method": "recovery_code"}) in logged
    assert ("recovery_code.used", {"left": 9}) in logged


async def test_a_held_login_expires_and_without_one_the_step_sends_to_login(client) -> None:
    secret, _ = await signed_up_with_two_factor(client)
    nothing_held = await client.get("/auth/two-factor")
    assert nothing_held.status_code == 302
    assert urlsplit(nothing_held.headers["Location"]).path == "/auth/login"

    await log_in(client, "ann@example.com")
    async with client.session_transaction() as cookie:
        held = cookie["held_login"]
        cookie["held_login"] = {**held, "at": held["at"] - 301}
    steady_step()
    late = await submit(client, "/auth/two-factor", {"code": code_at(secret)})
    assert late.status_code == 302 and urlsplit(late.headers["Location"]).path == "/auth/login"
    assert not await is_logged_in(client)
    assert "Log in first" in await text_of(await client.get("/auth/login"))


async def test_attempts_are_throttled_across_workers(
    app: Quart, client, database_url: str, mailbox: MailCatcher
) -> None:
    secret, _ = await signed_up_with_two_factor(client)
    other_app = create_app("testing", **app_settings(database_url, mailbox))
    async with other_app.test_app() as other_worker:
        other = other_worker.app.test_client()
        await log_in(client, "ann@example.com")
        await log_in(other, "ann@example.com")
        for attempt in range(5):
            worker = client if attempt % 2 else other
            assert (await submit(worker, "/auth/two-factor", {"code": "000000"})).status_code == 400
        steady_step()
        refused = await submit(client, "/auth/two-factor", {"code": code_at(secret)})
        assert refused.status_code == 429 and "Retry-After" in refused.headers
        assert re.search(r"Too many attempts, try again in \d minutes?", await text_of(refused))
        assert not await is_logged_in(client)


async def test_a_password_reset_keeps_two_factor(app: Quart, client) -> None:
    secret, _ = await signed_up_with_two_factor(client)
    await submit(client, "/auth/forgot", {"email": "ann@example.com"})
    async with app.extensions["database"].sessionmaker() as session:
        [signed] = await signed_links(session, "reset_password", "ann@example.com")
    done = await submit(client, f"/auth/reset/{signed}", {"password": "a brand new passphrase"})
    assert done.status_code == 302
    assert urlsplit(done.headers["Location"]).path == "/auth/two-factor"
    assert not await is_logged_in(client)
    steady_step()
    signed_in = await submit(client, "/auth/two-factor", {"code": code_at(secret)})
    assert signed_in.status_code == 302 and await is_logged_in(client)
    logins = [detail for action, detail in await audit_actions(app) if action == "login.succeeded"]
    assert logins[-1] == {"method": "totp"}  # the reset alone logged nobody in
    assert {"method": "password_reset"} not in logins


async def test_disabling_needs_the_password_and_a_code(app: Quart, client) -> None:
    await sign_up(client, "ann@example.com")
    secret, _ = await enrol(client)
    manage = await text_of(await client.get("/account/two-factor"))
    assert "Turn two-factor off" in manage and "Make new recovery codes" in manage

    steady_step()
    wrong_password = await submit(
        client, "/account/two-factor/disable", {"password": "nope", "code": code_at(secret)}
    )
    assert wrong_password.status_code == 400
    assert "not your password" in await text_of(wrong_password)
    wrong_code = await submit(
        client, "/account/two-factor/disable", {"password": PASSWORD, "code": "000000"}
    )
    assert wrong_code.status_code == 400 and "not right" in await text_of(wrong_code)

    new = await submit(client, "/account/two-factor/recovery-codes", {"code": code_at(secret)})
    assert new.status_code == 201 and len(CODES.findall(await text_of(new))) == 10
    off = await submit(
        client, "/account/two-factor/disable", {"password": PASSWORD, "code": code_at(secret, +1)}
    )
    assert off.status_code == 302
    assert "Enable two-factor" in await text_of(await client.get("/account/"))
    await submit(client, "/auth/logout")
    assert (await log_in(client, "ann@example.com")).headers["Location"] == "/"
    assert await is_logged_in(client)


async def test_the_pages_need_a_login_and_a_bad_form_is_no_500(client) -> None:
    assert (await client.get("/account/two-factor")).status_code == 302
    await sign_up(client, "ann@example.com")
    # Not enrolled: confirming, regenerating and disabling are refused with a message.
    assert (await submit(client, "/account/two-factor/confirm", {"code": "1"})).status_code == 302
    assert (await submit(client, "/account/two-factor/recovery-codes")).status_code == 400
    refused = await submit(client, "/account/two-factor/disable", {"password": PASSWORD})
    assert refused.status_code == 400
    assert (await submit(client, "/account/two-factor/enable")).status_code == 200


async def test_a_pending_enrolment_does_not_change_the_login(app: Quart, client) -> None:
    await sign_up(client, "ann@example.com")
    await submit(client, "/account/two-factor/enable")
    await submit(client, "/auth/logout")
    assert (await log_in(client, "ann@example.com")).headers["Location"] == "/"
    async with app.extensions["database"].sessionmaker() as session:
        ann = await session.scalar(select(User).where(User.email == "ann@example.com"))
        assert await two_factor.second_factors(session, ann) == []
