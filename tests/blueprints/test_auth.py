"""Accounts through the pages, with a real SMTP server catching the mail."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from quart import Quart
from sqlalchemy import func, select, update

from app.db import utcnow
from app.models import AccountToken, AuthSession, LoginThrottle, OutboxMessage, User
from app.services import api_tokens, login_sessions
from tests.mailcatcher import MailCatcher
from tests.pages import PASSWORD, log_in, sign_up, submit, text_of


async def deliver(app: Quart) -> None:
    await app.extensions["mail_sender"].deliver_pending()


def path_of(link: str) -> str:
    parts = urlsplit(link)
    return parts.path + (f"?{parts.query}" if parts.query else "")


async def count(app: Quart, model: type) -> int:
    async with app.extensions["database"].sessionmaker() as session:
        return await session.scalar(select(func.count()).select_from(model))


async def user_by_email(app: Quart, email: str) -> User | None:
    async with app.extensions["database"].sessionmaker() as session:
        return await session.scalar(select(User).where(User.email == email))


def auth_cookie(client) -> str:
    return next(cookie.value for cookie in client.cookie_jar if cookie.name == "issues_auth")


async def is_logged_in(client) -> bool:
    response = await client.get("/account/")
    return response.status_code == 200


# --- Sign-up and validation ---------------------------------------------------------------------


async def test_the_whole_journey_sign_up_validate_log_out_log_in(
    app: Quart, client, mailbox: MailCatcher
) -> None:
    response = await sign_up(client, "  Ann@Example.COM ")
    assert response.status_code == 302
    user = await user_by_email(app, "ann@example.com")
    assert user is not None and user.email_verified_at is None
    assert user.password_hash.startswith("$argon2id$")

    # Logged in but unvalidated: the banner asks for the link.
    home = await text_of(await client.get("/"))
    assert "Confirm your address" in home and "Send the link again" in home

    await deliver(app)
    [mail] = mailbox.to("ann@example.com")
    assert mail.subject == "Confirm your email address for Issues"
    assert mail.html and "Confirm my address" in mail.html
    link = mail.link()
    assert link.startswith("http://issues.test/auth/verify/")

    response = await client.get(path_of(link))
    assert response.status_code == 302
    assert (await user_by_email(app, "ann@example.com")).email_verified_at is not None
    assert "Confirm your address" not in await text_of(await client.get("/"))

    await submit(client, "/auth/logout")
    assert not await is_logged_in(client)
    response = await log_in(client, "ANN@example.com")
    assert response.status_code == 302
    assert await is_logged_in(client)


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"email": "not-an-address"}, "email", "An email address must have an @-sign"),
        ({"password": "short"}, "password", "at least 10 characters"),
        ({"password": "password123"}, "password", "most common"),
        ({"password": "dana@example.com"}, "password", "must not be your email"),
        ({"display_name": ""}, "display_name", "what to call you"),
        ({"display_name": "Eve\r\nBcc: victim@example.com"}, "display_name", "line breaks"),
    ],
)
async def test_a_bad_sign_up_shows_the_error_beside_the_field_and_writes_nothing(
    app: Quart, client, fields: dict[str, str], field: str, message: str
) -> None:
    form = {"email": "dana@example.com", "display_name": "Dana", "password": PASSWORD, **fields}
    response = await submit(client, "/auth/signup", form)
    assert response.status_code == 400
    page = await text_of(response)
    assert f'id="field-{field}-error"' in page
    assert message in page
    assert await count(app, User) == 0
    assert await count(app, OutboxMessage) == 0


async def test_an_address_is_unique_whatever_its_case(app: Quart, client) -> None:
    await sign_up(client, "ann@example.com")
    await submit(client, "/auth/logout")
    response = await sign_up(client, " ANN@example.com")
    assert response.status_code == 400
    assert "An account with this address exists" in await text_of(response)
    assert await count(app, User) == 1


@pytest.mark.parametrize(
    ("mode", "domains", "email", "allowed"),
    [
        ("open", "", "x@anywhere.org", True),
        ("closed", "", "x@example.com", False),
        ("domains", "example.com, corp.example", "x@corp.example", True),
        ("domains", "example.com", "x@other.org", False),
    ],
)
async def test_the_site_setting_chooses_who_may_sign_up(
    database_url: str, mailbox: MailCatcher, mode: str, domains: str, email: str, allowed: bool
) -> None:
    from app import create_app
    from tests.conftest import app_settings

    app = create_app(
        "testing", **app_settings(database_url, mailbox, SIGNUP_MODE=mode, SIGNUP_DOMAINS=domains)
    )
    async with app.test_app() as test_app:
        client = test_app.test_client()
        response = await sign_up(client, email)
        assert (response.status_code == 302) is allowed
        assert (await count(app, User) == 1) is allowed


async def test_an_unvalidated_account_cannot_change_anything(app: Quart, client) -> None:
    from app.errors import Forbidden
    from app.services import projects

    await sign_up(client, "ann@example.com")
    user = await user_by_email(app, "ann@example.com")
    async with app.extensions["database"].sessionmaker() as session:
        with pytest.raises(Forbidden, match="Confirm your email address"):
            await projects.create_project(session, user, key="WEB", name="Website")


async def test_sending_the_link_again_voids_the_old_one_and_is_rate_limited(
    app: Quart, client, mailbox: MailCatcher
) -> None:
    await sign_up(client, "ann@example.com")
    for _ in range(3):
        assert (await submit(client, "/auth/verify/resend")).status_code == 302
    refused = await submit(client, "/auth/verify/resend")
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    await deliver(app)
    links = [mail.link() for mail in mailbox.to("ann@example.com")]
    assert len(links) == 4
    for stale in links[:-1]:
        assert (await client.get(path_of(stale))).status_code == 400
    assert (await client.get(path_of(links[-1]))).status_code == 302


async def test_a_validation_link_works_once_and_only_unaltered(
    app: Quart, client, mailbox: MailCatcher
) -> None:
    await sign_up(client, "ann@example.com")
    await deliver(app)
    link = path_of(mailbox.to("ann@example.com")[0].link())
    tampered = link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB")
    assert (await client.get(tampered)).status_code == 400
    assert (await client.get(link)).status_code == 302
    again = await client.get(link)
    assert again.status_code == 400
    assert "invalid or has expired" in await text_of(again)


async def test_a_validation_link_expires_after_24_hours(
    app: Quart, client, mailbox: MailCatcher
) -> None:
    await sign_up(client, "ann@example.com")
    await deliver(app)
    async with app.extensions["database"].sessionmaker() as session:
        await session.execute(
            update(AccountToken).values(expires_at=utcnow() - timedelta(seconds=1))
        )
        await session.commit()
    link = path_of(mailbox.to("ann@example.com")[0].link())
    assert (await client.get(link)).status_code == 400
    assert (await user_by_email(app, "ann@example.com")).email_verified_at is None


async def test_a_link_is_bound_to_its_purpose(app: Quart, client, mailbox: MailCatcher) -> None:
    await sign_up(client, "ann@example.com")
    await submit(client, "/auth/forgot", {"email": "ann@example.com"})
    await deliver(app)
    validation, reset = (mail.link() for mail in mailbox.to("ann@example.com"))
    signed_reset = reset.rsplit("/", 1)[1]
    signed_validation = validation.rsplit("/", 1)[1]
    assert (await client.get(f"/auth/verify/{signed_reset}")).status_code == 400
    assert (await client.get(f"/auth/reset/{signed_validation}")).status_code == 400


async def test_a_validation_link_is_bound_to_the_address_it_was_sent_to(
    app: Quart, client, mailbox: MailCatcher
) -> None:
    await sign_up(client, "ann@example.com")
    async with app.extensions["database"].sessionmaker() as session:
        await session.execute(
            update(User).where(User.email == "ann@example.com").values(email="new@example.com")
        )
        await session.commit()
    await deliver(app)
    link = path_of(mailbox.to("ann@example.com")[0].link())
    assert (await client.get(link)).status_code == 400
    assert (await user_by_email(app, "new@example.com")).email_verified_at is None


# --- Login and sessions -------------------------------------------------------------------------


async def make_account(app: Quart, client, email: str = "ann@example.com") -> None:
    await sign_up(client, email)
    await submit(client, "/auth/logout")


async def test_unknown_address_and_wrong_password_get_the_same_answer(app: Quart, client) -> None:
    await make_account(app, client)
    unknown = await log_in(client, "nobody@example.com")
    wrong = await log_in(client, "ann@example.com", "not the password at all")
    assert unknown.status_code == wrong.status_code == 400
    for response in (unknown, wrong):
        assert "Wrong email or password." in await text_of(response)


async def test_an_unknown_address_costs_a_password_verification(database_url: str) -> None:
    """With real argon2 parameters, a login for an unknown address takes about as long as one
    with a wrong password: no timing oracle for which addresses have accounts."""
    import time

    from app.security import PasswordHasher

    hasher = PasswordHasher("default")
    known_hash = await hasher.hash(PASSWORD)

    async def cost(password_hash: str | None) -> float:
        samples = []
        for _ in range(3):
            started = time.perf_counter()
            await hasher.verify(password_hash, "wrong password here")
            samples.append(time.perf_counter() - started)
        return sorted(samples)[1]

    wrong_password, unknown_address = await cost(known_hash), await cost(None)
    assert 0.33 < unknown_address / wrong_password < 3


async def test_every_login_gets_a_new_session_and_logout_kills_the_copied_cookie(
    app: Quart, client
) -> None:
    await make_account(app, client)
    await log_in(client, "ann@example.com")
    first_cookie = auth_cookie(client)
    await submit(client, "/auth/logout")
    await log_in(client, "ann@example.com")
    assert auth_cookie(client) != first_cookie

    # A copy of the live cookie works (so the copying below is real)...
    twin = app.test_client()
    twin.set_cookie("localhost", "issues_auth", auth_cookie(client))
    assert await is_logged_in(twin)
    # ...but someone who copied the first cookie before that logout opens nothing.
    thief = app.test_client()
    thief.set_cookie("localhost", "issues_auth", first_cookie)
    assert not await is_logged_in(thief)
    async with app.extensions["database"].sessionmaker() as session:
        rows = list(await session.scalars(select(AuthSession).order_by(AuthSession.id)))
    assert [row.revoked_at is not None for row in rows] == [True, True, False]
    assert all(len(row.token_digest) == 64 for row in rows)
    assert first_cookie not in {row.token_digest for row in rows}


@pytest.mark.parametrize("limit", ["idle", "absolute"])
async def test_a_session_ends_after_its_idle_and_absolute_lifetimes(
    app: Quart, client, limit: str
) -> None:
    await make_account(app, client)
    await log_in(client, "ann@example.com")
    assert await is_logged_in(client)
    past = utcnow() - timedelta(seconds=1)
    values = (
        {"last_seen_at": utcnow() - timedelta(days=2)} if limit == "idle" else {"expires_at": past}
    )
    async with app.extensions["database"].sessionmaker() as session:
        await session.execute(update(AuthSession).values(**values))
        await session.commit()
    assert not await is_logged_in(client)


async def test_remember_me_keeps_a_persistent_cookie(app: Quart, client) -> None:
    await make_account(app, client)
    plain = await log_in(client, "ann@example.com")
    assert "Expires=" not in plain.headers["Set-Cookie"]
    await submit(client, "/auth/logout")
    remembered = await log_in(client, "ann@example.com", remember="on")
    cookie = next(c for c in remembered.headers.getlist("Set-Cookie") if "issues_auth" in c)
    assert "Expires=" in cookie
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


async def test_log_out_my_other_sessions(app: Quart, client) -> None:
    await make_account(app, client)
    laptop, phone = app.test_client(), app.test_client()
    await log_in(laptop, "ann@example.com")
    await log_in(phone, "ann@example.com")
    assert await is_logged_in(phone)
    account_page = await text_of(await laptop.get("/account/"))
    assert account_page.count("<tr>") == 3  # the header and two sessions
    await submit(laptop, "/account/sessions/end-others")
    assert await is_logged_in(laptop)
    assert not await is_logged_in(phone)


async def test_failed_logins_slow_down_then_recover(app: Quart, client) -> None:
    await make_account(app, client)
    for _ in range(login_sessions.FREE_LOGIN_FAILURES + 1):
        assert (await log_in(client, "ann@example.com", "wrong password!")).status_code == 400
    # Now even the right password must wait, and the answer says for how long.
    waiting = await log_in(client, "ann@example.com")
    assert waiting.status_code == 429
    assert 0 < int(waiting.headers["Retry-After"]) <= 2
    assert "Try again in" in await text_of(waiting)
    async with app.extensions["database"].sessionmaker() as session:
        await session.execute(
            update(LoginThrottle).values(last_failure_at=utcnow() - timedelta(minutes=20))
        )
        await session.commit()
    assert (await log_in(client, "ann@example.com")).status_code == 302
    assert await count(app, LoginThrottle) == 0


async def test_the_delay_grows_and_never_locks_out_for_good() -> None:
    from app.models import LoginThrottle

    delays = [
        login_sessions._login_delay(LoginThrottle(failures=n, last_failure_at=utcnow()))
        for n in range(1, 30)
    ]
    assert delays[: login_sessions.FREE_LOGIN_FAILURES] == [timedelta(0)] * 3
    assert delays == sorted(delays)
    assert max(delays) == login_sessions.LONGEST_LOGIN_DELAY


async def test_an_unknown_address_is_throttled_like_a_known_one(app: Quart, client) -> None:
    for _ in range(login_sessions.FREE_LOGIN_FAILURES + 1):
        await log_in(client, "nobody@example.com", "wrong password!")
    assert (await log_in(client, "nobody@example.com")).status_code == 429


async def test_failed_logins_from_one_address_meet_a_ceiling(
    database_url: str, mailbox: MailCatcher
) -> None:
    from app import create_app
    from tests.conftest import app_settings

    settings = app_settings(database_url, mailbox, LOGIN_FAILURES_PER_ADDRESS=20)
    async with create_app("testing", **settings).test_app() as test_app:
        client = test_app.test_client()
        statuses = [
            (await log_in(client, f"u{n}@example.com", "wrong password!")).status_code
            for n in range(21)
        ]
        assert statuses[:20] == [400] * 20
        refused = await log_in(client, "u99@example.com", "wrong password!")
    assert refused.status_code == 429
    assert "from your address" in await text_of(refused)
    assert "reset your password" in await text_of(refused)


async def test_an_office_behind_one_address_never_locks_itself_out(
    app: Quart, client, mailbox: MailCatcher
) -> None:
    """Successes never count against the address, and one person's failures stop only that
    person (per address and account), not the colleagues behind the same NAT."""
    from tests.factories import make_user

    hasher = app.extensions["account_settings"].hasher
    async with app.extensions["database"].sessionmaker() as session:
        password_hash = await hasher.hash(PASSWORD)
        for n in range(40):
            await make_user(session, email=f"colleague{n}@example.com", password_hash=password_hash)
    for n in range(40):  # twice the old per-address limit of 20 logins
        assert (await log_in(client, f"colleague{n}@example.com")).status_code == 302
        await submit(client, "/auth/logout")

    limit = app.config["LOGIN_FAILURES_PER_ADDRESS_AND_ACCOUNT"]
    async with app.extensions["database"].sessionmaker() as session:
        for _ in range(limit):
            assert (await log_in(client, "colleague0@example.com", "wrong!")).status_code in (
                400,
                429,
            )
            # Past the account's own growing delay, so that the address's count is what stops.
            await session.execute(
                update(LoginThrottle).values(last_failure_at=utcnow() - timedelta(hours=1))
            )
            await session.commit()
    refused = await log_in(client, "colleague0@example.com")
    assert refused.status_code == 429
    assert "from your address" in await text_of(refused)
    assert (await log_in(client, "colleague1@example.com")).status_code == 302


async def test_forwarded_addresses_count_only_behind_a_trusted_proxy(
    database_url: str, mailbox: MailCatcher
) -> None:
    from app import create_app
    from tests.conftest import app_settings

    async def refused_after_limit(trust: int) -> bool:
        settings = app_settings(
            database_url, mailbox, TRUST_PROXY_COUNT=trust, LOGIN_FAILURES_PER_ADDRESS=20
        )
        app = create_app("testing", **settings)
        async with app.test_app() as test_app:
            client = test_app.test_client()
            statuses = []
            for n in range(21):
                response = await submit(
                    client,
                    "/auth/login",
                    {"email": f"u{n}@example.com", "password": "wrong password!"},
                    headers={"X-Forwarded-For": f"198.51.100.{n}"},
                )
                statuses.append(response.status_code)
            return 429 in statuses

    assert await refused_after_limit(trust=0)  # a client cannot escape by forging the header
    assert not await refused_after_limit(trust=1)  # behind our proxy, each address counts


async def test_a_changed_hash_setting_rehashes_at_login(
    database_url: str, mailbox: MailCatcher
) -> None:
    from app import create_app
    from tests.conftest import app_settings

    cheap = create_app("testing", **app_settings(database_url, mailbox))
    async with cheap.test_app() as test_app:
        await make_account(cheap, test_app.test_client())
    old_hash = (await user_by_email(cheap, "ann@example.com")).password_hash

    strong = create_app(
        "testing", **app_settings(database_url, mailbox, PASSWORD_HASH_PROFILE="default")
    )
    async with strong.test_app() as test_app:
        assert (await log_in(test_app.test_client(), "ann@example.com")).status_code == 302
        new_hash = (await user_by_email(strong, "ann@example.com")).password_hash
    assert new_hash != old_hash
    assert not strong.extensions["account_settings"].hasher.needs_rehash(new_hash)


# --- Password reset -----------------------------------------------------------------------------


async def test_reset_journey_revokes_every_session_and_logs_in_afresh(
    app: Quart, client, mailbox: MailCatcher
) -> None:
    await make_account(app, client)
    elsewhere = app.test_client()
    await log_in(elsewhere, "ann@example.com")
    assert await is_logged_in(elsewhere)

    async with app.extensions["database"].sessionmaker() as session:
        ann = await session.scalar(select(User).where(User.email == "ann@example.com"))
        ann.email_verified_at = utcnow()  # only a confirmed account makes tokens
        await session.commit()
        made = await api_tokens.create_token(session, ann, name="ci", scope="write")
    token_header = {"Authorization": f"Bearer {made.secret}"}
    assert (await elsewhere.get("/api/v1/me", headers=token_header)).status_code == 200

    forgot = await submit(client, "/auth/forgot", {"email": "ann@example.com"})
    assert "we sent it a link" in await text_of(forgot)
    await deliver(app)
    [reset_mail] = [m for m in mailbox.to("ann@example.com") if "Reset" in m.subject]
    link = path_of(reset_mail.link())
    assert reset_mail.link().startswith("http://issues.test/auth/reset/")

    assert (await client.get(link)).status_code == 200
    weak = await submit(client, link, {"password": "short"})
    assert weak.status_code == 400  # the link stays usable after a refused password
    done = await submit(client, link, {"password": "a brand new passphrase"})
    assert done.status_code == 302
    assert await is_logged_in(client)
    assert not await is_logged_in(elsewhere)
    assert (await client.get(link)).status_code == 400  # used
    # API tokens made before the reset are cut off too (someone else may have made them).
    assert (await client.get("/api/v1/me", headers=token_header)).status_code == 401

    await deliver(app)
    assert any("was changed" in m.subject for m in mailbox.to("ann@example.com"))
    await submit(client, "/auth/logout")
    assert (await log_in(client, "ann@example.com", "a brand new passphrase")).status_code == 302


async def test_a_newer_reset_link_voids_the_older_and_links_expire(
    app: Quart, client, mailbox: MailCatcher
) -> None:
    await make_account(app, client)
    await submit(client, "/auth/forgot", {"email": "ann@example.com"})
    await submit(client, "/auth/forgot", {"email": "ann@example.com"})
    await deliver(app)
    first, second = (
        path_of(m.link()) for m in mailbox.to("ann@example.com") if "Reset" in m.subject
    )
    assert (await client.get(first)).status_code == 400
    assert (await client.get(second)).status_code == 200
    async with app.extensions["database"].sessionmaker() as session:
        await session.execute(
            update(AccountToken).values(expires_at=utcnow() - timedelta(seconds=1))
        )
        await session.commit()
    assert (await client.get(second)).status_code == 400


async def test_forgot_answers_the_same_for_known_and_unknown_addresses(
    app: Quart, client, mailbox: MailCatcher
) -> None:
    await make_account(app, client)
    mailbox.messages.clear()
    await deliver(app)
    mailbox.messages.clear()
    known = await submit(client, "/auth/forgot", {"email": "ann@example.com"})
    unknown = await submit(client, "/auth/forgot", {"email": "nobody@example.com"})
    assert known.status_code == unknown.status_code == 200

    def message(page: str) -> str:
        return (
            page.split('role="status">', 1)[1]
            .split("</p>", 1)[0]
            .replace("nobody@example.com", "ADDRESS")
            .replace("ann@example.com", "ADDRESS")
        )

    assert message(await text_of(known)) == message(await text_of(unknown))
    await deliver(app)
    assert [m.recipients for m in mailbox.messages] == [["ann@example.com"]]


async def test_links_are_built_from_base_url_never_from_the_host_header(
    app: Quart, client, mailbox: MailCatcher
) -> None:
    await make_account(app, client)
    await submit(
        client, "/auth/forgot", {"email": "ann@example.com"}, headers={"Host": "evil.example"}
    )
    await deliver(app)
    for mail in mailbox.to("ann@example.com"):
        assert "evil.example" not in mail.text
        assert mail.link().startswith("http://issues.test/")


# --- The account page ---------------------------------------------------------------------------


async def test_changing_the_password_needs_the_current_one_and_ends_other_sessions(
    app: Quart, client, mailbox: MailCatcher
) -> None:
    await make_account(app, client)
    await log_in(client, "ann@example.com")
    other = app.test_client()
    await log_in(other, "ann@example.com")
    assert await is_logged_in(other)
    wrong = await submit(
        client,
        "/account/password",
        {"current_password": "not my password", "new_password": "another passphrase"},
    )
    assert wrong.status_code == 400
    assert "not your current password" in await text_of(wrong)
    done = await submit(
        client,
        "/account/password",
        {"current_password": PASSWORD, "new_password": "another passphrase"},
    )
    assert done.status_code == 302
    assert await is_logged_in(client)
    assert not await is_logged_in(other)
    await deliver(app)
    assert any("was changed" in m.subject for m in mailbox.to("ann@example.com"))


async def test_changing_the_address_takes_effect_from_the_link(
    app: Quart, client, mailbox: MailCatcher
) -> None:
    await make_account(app, client)
    await log_in(client, "ann@example.com")
    await submit(
        client, "/account/email", {"email": "Ann@New.example", "current_password": PASSWORD}
    )
    assert await user_by_email(app, "ann@example.com") is not None  # not yet
    await deliver(app)
    [mail] = mailbox.to("ann@new.example")
    assert (await client.get(path_of(mail.link()))).status_code == 302
    user = await user_by_email(app, "ann@new.example")
    assert user is not None and user.email_verified_at is not None
    await submit(client, "/auth/logout")
    assert (await log_in(client, "ann@new.example")).status_code == 302


async def test_changing_the_display_name(app: Quart, client) -> None:
    await make_account(app, client)
    await log_in(client, "ann@example.com")
    await submit(client, "/account/name", {"display_name": "Ann B. Example"})
    assert "Ann B. Example" in await text_of(await client.get("/account/"))
    refused = await submit(client, "/account/name", {"display_name": "  "})
    assert refused.status_code == 400


async def test_the_account_page_needs_a_login_and_comes_back_after(app: Quart, client) -> None:
    await make_account(app, client)
    response = await client.get("/account/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/auth/login?next=/account/"
    back = await submit(
        client,
        "/auth/login",
        {"email": "ann@example.com", "password": PASSWORD, "next": "/account/"},
    )
    assert back.headers["Location"] == "/account/"


async def test_an_address_that_not_every_mail_server_takes_is_refused(app: Quart, client) -> None:
    response = await sign_up(client, "jörg@example.com")
    assert response.status_code == 400
    assert await count(app, User) == 0
