"""Single sign-on through the pages, against a real OpenID provider (oidc-provider on Node):
the person's visit to the provider is driven over HTTP, the app's side by its test client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import pytest_asyncio
from quart import Quart
from sqlalchemy import func, select

from app import create_app
from app.models import AuditEvent, ExternalIdentity, OutboxMessage, User
from tests.conftest import TEST_BASE_URL, app_settings
from tests.factories import make_user
from tests.mailcatcher import MailCatcher, free_port
from tests.oidc_provider import OidcProvider, visit_provider
from tests.pages import PASSWORD, log_in, submit, text_of


@asynccontextmanager
async def sso_app_on(
    database_url: str, mailbox: MailCatcher, provider: OidcProvider, **overrides: Any
) -> AsyncIterator[Quart]:
    settings = app_settings(database_url, mailbox, **provider.app_settings(**overrides))
    app = create_app("testing", **settings)
    async with app.test_app() as test_app:
        yield test_app.app


@pytest_asyncio.fixture
async def sso_app(
    database_url: str, mailbox: MailCatcher, oidc_provider: OidcProvider
) -> AsyncIterator[Quart]:
    async with sso_app_on(database_url, mailbox, oidc_provider) as app:
        yield app


def callback_path(url: str) -> str:
    parts = urlsplit(url)
    assert url.startswith(TEST_BASE_URL), url
    return f"{parts.path}?{parts.query}"


async def start(client: Any, next_page: str | None = None) -> str:
    """Press the button: the provider's authorization URL the app redirects to."""
    path = "/auth/oidc/login" + (f"?{urlencode({'next': next_page})}" if next_page else "")
    answer = await client.get(path)
    assert answer.status_code == 302, await text_of(answer)
    return answer.headers["Location"]


async def sign_in(client: Any, login: str, **visit: Any) -> Any:
    """The whole way: the button, the provider's login and consent, the callback."""
    back = await visit_provider(await start(client), login, redirect_prefix=TEST_BASE_URL, **visit)
    return await client.get(callback_path(back))


async def rows(app: Quart, model: type, *where: Any) -> list:
    async with app.extensions["database"].sessionmaker() as session:
        return list(await session.scalars(select(model).where(*where).order_by(model.id)))


async def actions(app: Quart) -> list[str]:
    return [event.action for event in await rows(app, AuditEvent)]


async def is_logged_in(client: Any) -> bool:
    return (await client.get("/account/")).status_code == 200


# --- Signing in ---------------------------------------------------------------------------------


async def test_a_first_sign_in_creates_a_verified_account_without_a_password(
    sso_app: Quart,
) -> None:
    client = sso_app.test_client()
    authorization = urlsplit(await start(client))
    query = dict(parse_qsl(authorization.query))
    # PKCE S256, a state and a nonce, and this app's registered callback.
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert query["state"] and query["nonce"] and query["state"] != query["nonce"]
    assert query["redirect_uri"] == f"{TEST_BASE_URL}/auth/oidc/callback"

    client = sso_app.test_client()
    answer = await sign_in(client, "new.person@example.com")
    assert answer.status_code == 302 and answer.headers["Location"] == "/", await text_of(answer)
    assert await is_logged_in(client)
    [user] = await rows(sso_app, User)
    assert (user.email, user.password_hash, user.handle) == (
        "new.person@example.com",
        None,
        "new.person",
    )
    assert user.email_verified_at is not None and user.display_name == "new person"
    [link] = await rows(sso_app, ExternalIdentity)
    assert (link.user_id, link.issuer, link.email) == (
        user.id,
        sso_app.config["OIDC_ISSUER"],
        "new.person@example.com",
    )
    assert await actions(sso_app) == [
        "account.signed_up",
        "sso.linked",
        "sso.login",
        "login.succeeded",
    ]
    [login] = await rows(sso_app, AuditEvent, AuditEvent.action == "login.succeeded")
    assert login.detail == {"method": "sso"} and login.actor_id == user.id


async def test_the_next_page_is_kept_through_the_provider(sso_app: Quart) -> None:
    client = sso_app.test_client()
    url = await start(client, next_page="/account/")
    back = await visit_provider(url, "ann@example.com", redirect_prefix=TEST_BASE_URL)
    answer = await client.get(callback_path(back))
    assert answer.headers["Location"] == "/account/"


async def test_signing_in_again_finds_the_account_by_its_link(sso_app: Quart) -> None:
    await sign_in(sso_app.test_client(), "ann@example.com")
    [first] = await rows(sso_app, ExternalIdentity)
    client = sso_app.test_client()
    assert (await sign_in(client, "ann@example.com")).status_code == 302
    assert await is_logged_in(client)
    [again] = await rows(sso_app, ExternalIdentity)
    assert again.id == first.id and again.last_login_at > first.last_login_at
    assert len(await rows(sso_app, User)) == 1
    assert (await actions(sso_app)).count("sso.linked") == 1


async def test_a_verified_address_links_the_existing_account(sso_app: Quart, session: Any) -> None:
    hasher = sso_app.extensions["account_settings"].hasher
    ann = await make_user(
        session, email="ann@example.com", validated=False, password_hash=await hasher.hash(PASSWORD)
    )
    client = sso_app.test_client()
    assert (await sign_in(client, "ann@example.com")).status_code == 302
    assert await is_logged_in(client)
    [user] = await rows(sso_app, User)
    assert user.id == ann.id and user.password_hash == ann.password_hash
    assert user.email_verified_at is not None  # the provider vouched for it
    [link] = await rows(sso_app, ExternalIdentity)
    assert link.user_id == ann.id
    [linked] = await rows(sso_app, AuditEvent, AuditEvent.action == "sso.linked")
    assert linked.actor_id == ann.id and linked.detail["created"] is False
    # The password still works too (the domain is not SSO-only).
    assert (await log_in(sso_app.test_client(), "ann@example.com")).status_code == 302


async def test_an_unverified_address_never_links_an_account(sso_app: Quart, session: Any) -> None:
    bob = await make_user(session, email="bob@example.com")
    client = sso_app.test_client()
    answer = await sign_in(client, "unverified:bob@example.com")
    assert answer.status_code == 400
    page = await text_of(answer)
    assert "has not verified your address bob@example.com" in page
    assert "Try again" in page and "/auth/login" in page
    assert not await is_logged_in(client)
    assert await rows(sso_app, ExternalIdentity) == []
    [failed] = await rows(sso_app, AuditEvent)
    assert (failed.action, failed.detail, failed.subject_email) == (
        "sso.failed",
        {"reason": "unverified_email"},
        "bob@example.com",
    )
    assert [user.id for user in await rows(sso_app, User)] == [bob.id]


async def test_an_unverified_address_creates_no_account_either(sso_app: Quart) -> None:
    answer = await sign_in(sso_app.test_client(), "unverified:new@example.com")
    assert answer.status_code == 400
    assert await rows(sso_app, User) == []


async def test_a_provider_without_an_address_is_refused(sso_app: Quart) -> None:
    answer = await sign_in(sso_app.test_client(), "noemail")
    assert answer.status_code == 400
    assert "did not give a usable email address" in await text_of(answer)
    assert await rows(sso_app, User) == []


@pytest.mark.parametrize(
    ("mode", "login", "created"),
    [
        ("closed", "new@example.com", False),
        ("domains", "new@elsewhere.example", False),
        ("domains", "new@example.com", True),
    ],
)
async def test_signup_mode_decides_whether_a_first_sign_in_creates_an_account(
    database_url: str,
    mailbox: MailCatcher,
    oidc_provider: OidcProvider,
    mode: str,
    login: str,
    created: bool,
) -> None:
    overrides = {"SIGNUP_MODE": mode, "SIGNUP_DOMAINS": "example.com"}
    async with sso_app_on(database_url, mailbox, oidc_provider, **overrides) as app:
        client = app.test_client()
        answer = await sign_in(client, login)
        assert await is_logged_in(client) is created
        assert len(await rows(app, User)) == int(created)
        if not created:
            assert answer.status_code == 400
            assert f"There is no account for {login} here" in await text_of(answer)
            [failed] = await rows(app, AuditEvent)
            assert failed.detail == {"reason": "signup_refused"}


async def test_closed_signup_still_lets_an_existing_account_in(
    database_url: str, mailbox: MailCatcher, oidc_provider: OidcProvider
) -> None:
    async with sso_app_on(database_url, mailbox, oidc_provider, SIGNUP_MODE="closed") as app:
        async with app.extensions["database"].sessionmaker() as session:
            ann = await make_user(session, email="ann@example.com")
        client = app.test_client()
        await sign_in(client, "ann@example.com")
        assert await is_logged_in(client)
        [link] = await rows(app, ExternalIdentity)
        assert link.user_id == ann.id


# --- SSO-only domains -----------------------------------------------------------------------------


async def test_an_sso_only_domain_refuses_password_login_signup_and_reset(
    database_url: str, mailbox: MailCatcher, oidc_provider: OidcProvider
) -> None:
    async with sso_app_on(
        database_url, mailbox, oidc_provider, OIDC_SSO_ONLY_DOMAINS="corp.example"
    ) as app:
        hasher = app.extensions["account_settings"].hasher
        async with app.extensions["database"].sessionmaker() as session:
            cyd = await make_user(
                session, email="cyd@corp.example", password_hash=await hasher.hash(PASSWORD)
            )
        client = app.test_client()

        refused = await log_in(client, "Cyd@Corp.Example")  # the right password, even
        assert refused.status_code == 403
        page = await text_of(refused)
        assert "Addresses at corp.example sign in with Test ID" in page
        assert "Sign in with Test ID" in page
        assert not await is_logged_in(client)
        [failed] = await rows(app, AuditEvent)
        assert (failed.action, failed.detail, failed.subject_email) == (
            "login.failed",
            {"reason": "sso_only"},
            "cyd@corp.example",
        )

        reset = await submit(client, "/auth/forgot", {"email": "cyd@corp.example"})
        assert reset.status_code == 403
        assert "sign in with Test ID" in await text_of(reset)
        async with app.extensions["database"].sessionmaker() as session:
            assert await session.scalar(select(func.count()).select_from(OutboxMessage)) == 0

        signup = await submit(
            client,
            "/auth/signup",
            {"email": "dee@corp.example", "display_name": "Dee", "password": PASSWORD},
        )
        assert signup.status_code == 400
        assert "sign in with Test ID" in await text_of(signup)

        # Other domains keep their passwords; the SSO-only one signs in through the provider.
        assert (await log_in(app.test_client(), "ann@example.com")).status_code == 400
        await sign_in(client, "cyd@corp.example")
        assert await is_logged_in(client)
        [link] = await rows(app, ExternalIdentity)
        assert link.user_id == cyd.id


# --- Refusals -------------------------------------------------------------------------------------


async def test_a_callback_with_another_state_is_refused(sso_app: Quart) -> None:
    client = sso_app.test_client()
    back = await visit_provider(
        await start(client), "ann@example.com", redirect_prefix=TEST_BASE_URL
    )
    query = dict(parse_qsl(urlsplit(back).query))
    forged = {**query, "state": query["state"][:-2] + "xx"}
    answer = await client.get(f"/auth/oidc/callback?{urlencode(forged)}")
    assert answer.status_code == 400
    assert "does not match the one this browser started" in await text_of(answer)
    assert not await is_logged_in(client)
    assert await rows(sso_app, User) == []
    [failed] = await rows(sso_app, AuditEvent)
    assert (failed.action, failed.detail) == ("sso.failed", {"reason": "state_mismatch"})
    # The forgery did not use up the real sign-in.
    assert (await client.get(callback_path(back))).status_code == 302
    assert await is_logged_in(client)


async def test_a_callback_is_used_once(sso_app: Quart) -> None:
    client = sso_app.test_client()
    back = await visit_provider(
        await start(client), "ann@example.com", redirect_prefix=TEST_BASE_URL
    )
    assert (await client.get(callback_path(back))).status_code == 302
    replay = await client.get(callback_path(back))
    assert replay.status_code == 400
    [*_, failed] = await rows(sso_app, AuditEvent)
    assert failed.detail == {"reason": "state_mismatch"}


async def test_a_callback_in_another_browser_is_refused(sso_app: Quart) -> None:
    """Login CSRF: someone else's finished sign-in, sent to a victim's browser."""
    back = await visit_provider(
        await start(sso_app.test_client()), "mallory@example.com", redirect_prefix=TEST_BASE_URL
    )
    victim = sso_app.test_client()
    assert (await victim.get(callback_path(back))).status_code == 400
    assert not await is_logged_in(victim)


async def test_of_two_sign_ins_started_only_the_newer_can_finish(sso_app: Quart) -> None:
    client = sso_app.test_client()
    older = await start(client)
    newer = await start(client)
    older_back = await visit_provider(older, "ann@example.com", redirect_prefix=TEST_BASE_URL)
    refused = await client.get(callback_path(older_back))
    assert refused.status_code == 400
    assert not await is_logged_in(client)
    newer_back = await visit_provider(newer, "ann@example.com", redirect_prefix=TEST_BASE_URL)
    assert (await client.get(callback_path(newer_back))).status_code == 302
    assert await is_logged_in(client)


async def test_an_id_token_for_another_nonce_is_refused(sso_app: Quart) -> None:
    client = sso_app.test_client()
    url = await start(client)
    # The browser's pending sign-in now expects another nonce than the one the provider got
    # (what a token from an older or injected sign-in carries).
    async with client.session_transaction() as browser_session:
        browser_session["oidc_login"] = {**browser_session["oidc_login"], "nonce": "x" * 43}
    back = await visit_provider(url, "ann@example.com", redirect_prefix=TEST_BASE_URL)
    answer = await client.get(callback_path(back))
    assert answer.status_code == 400
    assert "could not be verified" in await text_of(answer)
    assert not await is_logged_in(client)
    [failed] = await rows(sso_app, AuditEvent)
    assert failed.detail == {"reason": "nonce_mismatch"}


async def test_the_code_is_refused_without_its_pkce_verifier(sso_app: Quart) -> None:
    client = sso_app.test_client()
    url = await start(client)
    async with client.session_transaction() as browser_session:
        browser_session["oidc_login"] = {
            **browser_session["oidc_login"],
            "code_verifier": "v" * 64,
        }
    back = await visit_provider(url, "ann@example.com", redirect_prefix=TEST_BASE_URL)
    answer = await client.get(callback_path(back))
    assert answer.status_code == 400
    assert "refused the sign-in code" in await text_of(answer)
    [failed] = await rows(sso_app, AuditEvent)
    assert failed.detail == {"reason": "code_rejected:invalid_grant"}


async def test_cancelling_at_the_provider_shows_a_page_with_a_way_back(sso_app: Quart) -> None:
    client = sso_app.test_client()
    back = await visit_provider(
        await start(client), "ann@example.com", redirect_prefix=TEST_BASE_URL, consent=False
    )
    assert "error=access_denied" in back
    answer = await client.get(callback_path(back))
    assert answer.status_code == 400
    page = await text_of(answer)
    assert "You cancelled signing in with Test ID" in page and "/auth/login" in page
    [failed] = await rows(sso_app, AuditEvent)
    assert failed.detail == {"reason": "provider_error:access_denied"}
    assert await rows(sso_app, User) == []
    # An error that answers no request of this browser is only a state mismatch.
    stray = await sso_app.test_client().get("/auth/oidc/callback?error=access_denied&state=x")
    assert stray.status_code == 400 and "does not match" in await text_of(stray)


async def test_an_unreachable_provider_is_a_clear_page_not_an_error(
    database_url: str, mailbox: MailCatcher, oidc_provider: OidcProvider
) -> None:
    gone = f"http://127.0.0.1:{free_port()}"
    async with sso_app_on(database_url, mailbox, oidc_provider, OIDC_ISSUER=gone) as app:
        answer = await app.test_client().get("/auth/oidc/login")
        assert answer.status_code == 502
        assert "Test ID could not be reached just now" in await text_of(answer)
        [failed] = await rows(app, AuditEvent)
        assert failed.detail == {"reason": "provider_unreachable"}


async def test_the_button_shows_only_when_single_sign_on_is_set_up(
    sso_app: Quart, app: Quart
) -> None:
    for path in ("/auth/login", "/auth/signup"):
        page = await text_of(await sso_app.test_client().get(path))
        assert "Sign in with Test ID" in page and "/auth/oidc/login" in page
        plain = await text_of(await app.test_client().get(path))
        assert "Sign in with Test ID" not in plain and "/auth/oidc/login" not in plain
    assert (await app.test_client().get("/auth/oidc/login")).status_code == 404
    assert (await app.test_client().get("/auth/oidc/callback?state=x&code=y")).status_code == 404
