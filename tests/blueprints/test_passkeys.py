"""Passkeys through the routes: the account page's ceremony, passwordless sign-in and the
passkey as second factor, with a software authenticator answering as the browser would."""

from __future__ import annotations

import time
from typing import Any

import pytest
from quart import Quart
from sqlalchemy import select

from app.models import AuditEvent, Passkey, User
from tests.pages import csrf_token, log_in, sign_up, submit, text_of
from tests.webauthn_authenticator import SoftAuthenticator

ORIGIN = "http://issues.test"  # the test app's BASE_URL


@pytest.fixture
def key() -> SoftAuthenticator:
    return SoftAuthenticator(origin=ORIGIN)


async def post_json(client, path: str, body: Any) -> Any:
    return await client.post(
        path,
        json=body,
        headers={"X-CSRF-Token": await csrf_token(client), "Accept": "application/json"},
    )


async def add_passkey(client, key: SoftAuthenticator, name: str = "Laptop") -> Any:
    options = await post_json(client, "/account/passkeys/options", {"name": name})
    assert options.status_code == 200, await text_of(options)
    answer = key.register(await options.get_json())
    return await post_json(client, "/account/passkeys", {"name": name, "credential": answer})


async def sign_in_with(client, key: SoftAuthenticator, **extra: Any) -> Any:
    options = await post_json(client, "/auth/passkey/options", {})
    assert options.status_code == 200, await text_of(options)
    answer = key.authenticate(await options.get_json())
    return await post_json(client, "/auth/passkey/verify", {"credential": answer, **extra})


async def is_logged_in(client) -> bool:
    return (await client.get("/account/")).status_code == 200


async def audit_rows(app: Quart) -> list[AuditEvent]:
    async with app.extensions["database"].sessionmaker() as session:
        return list(await session.scalars(select(AuditEvent).order_by(AuditEvent.id)))


async def user_by_email(app: Quart, email: str) -> User:
    async with app.extensions["database"].sessionmaker() as session:
        user = await session.scalar(select(User).where(User.email == email))
        assert user is not None
        return user


async def test_add_a_passkey_log_out_and_sign_in_with_it(
    app: Quart, client, key: SoftAuthenticator
) -> None:
    await sign_up(client, "ann@example.com")
    page = await text_of(await client.get("/account/"))
    assert "Passkeys" in page and "data-passkey-add" in page
    added = await add_passkey(client, key, "Work laptop")
    assert added.status_code == 201
    assert (await added.get_json())["redirect"] == "/account/"
    page = await text_of(await client.get("/account/"))
    assert "Work laptop" in page and "never" in page

    await submit(client, "/auth/logout")
    assert not await is_logged_in(client)
    login_page = await text_of(await client.get("/auth/login"))
    assert (
        "Sign in with a passkey" in login_page and 'autocomplete="username webauthn"' in login_page
    )

    signed_in = await sign_in_with(client, key, next="/account/", remember=True)
    assert signed_in.status_code == 200, await text_of(signed_in)
    assert (await signed_in.get_json())["redirect"] == "/account/"
    assert await is_logged_in(client)
    ann = await user_by_email(app, "ann@example.com")
    events = [(e.action, e.actor_id, e.detail) for e in await audit_rows(app)]
    assert ("passkey.added", ann.id, {"name": "Work laptop"}) in events
    assert events[-2:] == [
        ("passkey.login", ann.id, {"name": "Work laptop"}),
        ("login.succeeded", ann.id, {"method": "passkey"}),
    ]


async def test_a_passkey_sign_in_goes_only_to_a_path_on_this_site(
    client, key: SoftAuthenticator
) -> None:
    await sign_up(client, "ann@example.com")
    await add_passkey(client, key)
    await submit(client, "/auth/logout")
    signed_in = await sign_in_with(client, key, next="//evil.example/")
    assert (await signed_in.get_json())["redirect"] == "/"


async def test_a_refused_sign_in_answers_json_and_logs_nobody_in(
    app: Quart, client, key: SoftAuthenticator
) -> None:
    await sign_up(client, "ann@example.com")
    await add_passkey(client, key)
    await submit(client, "/auth/logout")
    options = await post_json(client, "/auth/passkey/options", {})
    answer = key.authenticate(await options.get_json(), origin="https://evil.example")
    refused = await post_json(client, "/auth/passkey/verify", {"credential": answer})
    assert refused.status_code == 400
    assert "not accepted" in (await refused.get_json())["error"]["message"]
    assert not await is_logged_in(client)
    assert (await audit_rows(app))[-1].action == "passkey.failed"


async def test_replaying_a_sign_in_with_an_old_session_cookie_is_refused(
    client, key: SoftAuthenticator
) -> None:
    await sign_up(client, "ann@example.com")
    await add_passkey(client, key)
    await submit(client, "/auth/logout")
    options = await post_json(client, "/auth/passkey/options", {})
    # A synced passkey counts nothing (0 every time): only the challenge stops a replay.
    answer = key.authenticate(await options.get_json(), sign_count=0)
    old_cookies = [(c.name, c.value) for c in client.cookie_jar]
    assert (
        await post_json(client, "/auth/passkey/verify", {"credential": answer})
    ).status_code == 200
    # An attacker holding the answer and the cookie from before it was sent:
    await submit(client, "/auth/logout")
    client.cookie_jar.clear()
    for name, value in old_cookies:
        client.set_cookie("issues.test", name, value)
    replayed = await client.post(
        "/auth/passkey/verify",
        json={"credential": answer},
        headers={"X-CSRF-Token": await csrf_token(client), "Accept": "application/json"},
    )
    assert replayed.status_code == 400
    assert not await is_logged_in(client)


async def test_bad_bodies_get_json_refusals_not_errors(client) -> None:
    await sign_up(client, "ann@example.com")
    for path in (
        "/account/passkeys/options",
        "/account/passkeys",
        "/auth/passkey/verify",
        "/auth/passkey/second-factor/options",
        "/auth/passkey/second-factor/verify",
    ):
        for body in (None, [], {"credential": "x"}, {"name": 5}):
            response = await post_json(client, path, body)
            assert response.status_code == 400, (path, body, response.status_code)
            assert (await response.get_json())["error"]["message"]


async def test_the_ceremony_calls_need_the_csrf_token(client, key: SoftAuthenticator) -> None:
    await sign_up(client, "ann@example.com")
    for path in ("/account/passkeys/options", "/auth/passkey/options"):
        response = await client.post(path, json={"name": "Laptop"})
        assert response.status_code == 403


async def test_rename_and_remove_on_the_account_page(
    app: Quart, client, key: SoftAuthenticator
) -> None:
    await sign_up(client, "ann@example.com")
    passkey_id = (await (await add_passkey(client, key)).get_json())["id"]
    renamed = await submit(client, f"/account/passkeys/{passkey_id}/rename", {"name": "Old one"})
    assert renamed.status_code == 302
    assert "Old one" in await text_of(await client.get("/account/"))
    refused = await submit(client, f"/account/passkeys/{passkey_id}/rename", {"name": ""})
    assert refused.status_code == 302
    assert "at most 100 characters" in await text_of(await client.get("/account/"))
    removed = await submit(client, f"/account/passkeys/{passkey_id}/remove")
    assert removed.status_code == 302
    assert "Old one" not in await text_of(await client.get("/account/"))
    await submit(client, "/auth/logout")
    assert (await sign_in_with(client, key)).status_code == 400
    assert not await is_logged_in(client)


async def test_someone_elses_passkey_cannot_be_renamed_or_removed(
    app: Quart, client, key: SoftAuthenticator
) -> None:
    await sign_up(client, "ann@example.com")
    passkey_id = (await (await add_passkey(client, key)).get_json())["id"]
    bob = app.test_client()
    await sign_up(bob, "bob@example.com")
    assert (await submit(bob, f"/account/passkeys/{passkey_id}/remove")).status_code == 404
    assert (
        await submit(bob, f"/account/passkeys/{passkey_id}/rename", {"name": "x"})
    ).status_code == 404
    async with app.extensions["database"].sessionmaker() as session:
        assert (await session.get(Passkey, passkey_id)).name == "Laptop"


async def test_passkeys_are_off_at_an_ip_address(database_url, mailbox) -> None:
    from app import create_app
    from tests.conftest import app_settings

    app = create_app(
        "testing", **app_settings(database_url, mailbox, BASE_URL="http://127.0.0.1:5000")
    )
    async with app.test_app():
        client = app.test_client()
        await sign_up(client, "ann@example.com")
        page = await text_of(await client.get("/account/"))
        assert "Passkeys are off" in page and "data-passkey-add" not in page
        assert "Sign in with a passkey" not in await text_of(await client.get("/auth/login"))
        response = await post_json(client, "/auth/passkey/options", {})
        assert response.status_code == 400


# --- The second factor --------------------------------------------------------------------------


async def hold_login(client, user: User, *, next_page: str = "/account/", age: int = 0) -> None:
    """What sign_in.hold_login leaves in the session after a right password."""
    async with client.session_transaction() as session:
        session["held_login"] = {
            "user_id": user.id,
            "remember": True,
            "next": next_page,
            "method": "password",
            "at": int(time.time()) - age,
        }


async def second_step(client, key: SoftAuthenticator, **bend: Any) -> Any:
    options = await post_json(client, "/auth/passkey/second-factor/options", {})
    assert options.status_code == 200, await text_of(options)
    answer = key.authenticate(await options.get_json(), **bend)
    return await post_json(client, "/auth/passkey/second-factor/verify", {"credential": answer})


async def test_a_held_password_login_finishes_with_the_users_passkey(
    app: Quart, client, key: SoftAuthenticator
) -> None:
    await sign_up(client, "ann@example.com")
    await add_passkey(client, key)
    await submit(client, "/auth/logout")
    ann = await user_by_email(app, "ann@example.com")
    await hold_login(client, ann, next_page="/account/#passkeys")
    assert not await is_logged_in(client)
    done = await second_step(client, key, user_verified=False)
    assert done.status_code == 200, await text_of(done)
    assert (await done.get_json())["redirect"] == "/account/#passkeys"
    assert await is_logged_in(client)
    last = (await audit_rows(app))[-1]
    assert (last.action, last.actor_id, last.detail) == (
        "login.succeeded",
        ann.id,
        {"method": "password+passkey"},
    )
    async with client.session_transaction() as session:
        assert "held_login" not in session


async def test_another_users_passkey_does_not_finish_a_held_login(
    app: Quart, client, key: SoftAuthenticator
) -> None:
    await sign_up(client, "ann@example.com")
    await add_passkey(client, key)
    await submit(client, "/auth/logout")
    mallory = app.test_client()
    mallorys_key = SoftAuthenticator(origin=ORIGIN)
    await sign_up(mallory, "mallory@example.com")
    await add_passkey(mallory, mallorys_key)
    [mallorys] = mallorys_key.credentials.values()

    ann = await user_by_email(app, "ann@example.com")
    await hold_login(client, ann)
    refused = await second_step(client, mallorys_key, credential=mallorys)
    assert refused.status_code == 400
    assert not await is_logged_in(client)
    assert (await audit_rows(app))[-1].action == "passkey.failed"


async def test_no_second_step_without_a_held_login_or_after_it_expired(
    app: Quart, client, key: SoftAuthenticator
) -> None:
    await sign_up(client, "ann@example.com")
    await add_passkey(client, key)
    await submit(client, "/auth/logout")
    response = await post_json(client, "/auth/passkey/second-factor/options", {})
    assert response.status_code == 400
    ann = await user_by_email(app, "ann@example.com")
    await hold_login(client, ann, age=301)
    response = await post_json(client, "/auth/passkey/second-factor/options", {})
    assert response.status_code == 400
    assert "expired" in (await response.get_json())["error"]["message"]


async def test_a_password_login_of_an_account_with_a_passkey_asks_for_it_second(
    client, key: SoftAuthenticator
) -> None:
    await sign_up(client, "ann@example.com")
    await add_passkey(client, key)
    await submit(client, "/auth/logout")
    held = await log_in(client, "ann@example.com", next="/projects")
    assert (held.status_code, held.headers["Location"]) == (302, "/auth/two-factor")
    assert not await is_logged_in(client)
    page = await text_of(await client.get("/auth/two-factor"))
    assert "Finish signing in with one of your passkeys." in page
    assert "data-passkey-sign-in" in page
    assert "authenticator app" not in page  # no TOTP on this account: no code form
    done = await second_step(client, key)
    assert (await done.get_json())["redirect"] == "/projects"
    assert await is_logged_in(client)


async def test_two_pending_sign_in_ceremonies_either_may_finish(
    client, key: SoftAuthenticator
) -> None:
    # The autofill's ceremony waits while the button starts another.
    await sign_up(client, "ann@example.com")
    await add_passkey(client, key)
    await submit(client, "/auth/logout")
    autofill = await (await post_json(client, "/auth/passkey/options", {})).get_json()
    await post_json(client, "/auth/passkey/options", {})
    answer = key.authenticate(autofill)
    done = await post_json(client, "/auth/passkey/verify", {"credential": answer})
    assert done.status_code == 200, await text_of(done)


async def test_an_answer_to_another_browsers_ceremony_is_refused(
    app: Quart, client, key: SoftAuthenticator
) -> None:
    await sign_up(client, "ann@example.com")
    await add_passkey(client, key)
    await submit(client, "/auth/logout")
    victim = app.test_client()
    theirs = await (await post_json(victim, "/auth/passkey/options", {})).get_json()
    await post_json(client, "/auth/passkey/options", {})
    answer = key.authenticate(theirs)
    refused = await post_json(client, "/auth/passkey/verify", {"credential": answer})
    assert refused.status_code == 400
    assert "expired" in (await refused.get_json())["error"]["message"]
    assert not await is_logged_in(client)


async def test_a_passkeys_name_is_shown_as_text(client, key: SoftAuthenticator) -> None:
    await sign_up(client, "ann@example.com")
    await add_passkey(client, key, '<img src=x onerror="alert(1)">')
    page = await text_of(await client.get("/account/"))
    assert "<img src=x" not in page
    assert "&lt;img src=x onerror=" in page


async def test_the_two_factor_pages_partial_offers_the_passkey(app: Quart) -> None:
    from quart import render_template

    async with app.test_request_context("/auth/two-factor"):
        html = await render_template("passkeys/_second_factor.html")
    assert "Use a passkey" in html
    assert 'data-options-url="/auth/passkey/second-factor/options"' in html
    assert 'data-verify-url="/auth/passkey/second-factor/verify"' in html
    assert 'name="csrf_token"' in html and "js/passkeys.js" in html
