"""A person adds a passkey in a real browser and signs in with it: Chromium's virtual
authenticator (over the DevTools protocol) plays the fingerprint reader.

WebAuthn needs a domain for its relying party (an IP address is none) and a secure context,
which http://localhost is: this server is reached as localhost, and BASE_URL says so."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from playwright.async_api import CDPSession, Page, expect

from app import create_app
from tests.conftest import app_settings
from tests.e2e.conftest import LiveServer, screenshot_path, serving
from tests.mailcatcher import MailCatcher, free_port
from tests.pages import PASSWORD

pytestmark = pytest.mark.browser


@pytest_asyncio.fixture
async def localhost_server(database_url: str, mailbox: MailCatcher) -> AsyncIterator[LiveServer]:
    """The app served on a free loopback port, known to browsers (and BASE_URL) as localhost."""
    port = free_port()
    url = f"http://localhost:{port}"
    app = create_app("testing", **app_settings(database_url, mailbox, BASE_URL=url))
    assert (app.config["WEBAUTHN_RP_ID"], app.config["WEBAUTHN_ORIGIN"]) == ("localhost", url)
    async with serving(app, port):
        yield LiveServer(app, url)


async def virtual_authenticator(page: Page) -> tuple[CDPSession, str]:
    """A platform authenticator that holds passkeys and verifies its user at once."""
    devtools = await page.context.new_cdp_session(page)
    await devtools.send("WebAuthn.enable", {"enableUI": False})
    added = await devtools.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return devtools, added["authenticatorId"]


async def test_add_a_passkey_log_out_and_sign_in_with_it(
    page: Page, localhost_server: LiveServer, backend: str
) -> None:
    problems: list[str] = []
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))
    page.on("pageerror", lambda error: problems.append(str(error)))
    devtools, authenticator = await virtual_authenticator(page)
    base = localhost_server.url

    await page.goto(base + "/auth/signup")
    await page.get_by_label("Email address").fill("ann@example.com")
    await page.get_by_label("Your name").fill("Ann Example")
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_role("button", name="Sign up").click()
    await expect(page.locator(".user-chip")).to_contain_text("Ann Example")

    await page.goto(base + "/account/")
    await page.get_by_label("Passkey name").fill("This laptop")
    await page.get_by_role("button", name="Add a passkey").click()
    await expect(page.locator(".flash")).to_contain_text("“This laptop” is added")
    row = page.locator("#passkeys tr[data-passkey]")
    await expect(row).to_have_count(1)
    await expect(row).to_contain_text("This laptop")
    await expect(row).to_contain_text("never")
    held = await devtools.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})
    [credential] = held["credentials"]
    assert credential["isResidentCredential"] is True and credential["rpId"] == "localhost"

    await page.get_by_role("button", name="Log out", exact=True).click()
    await expect(page.locator(".flash")).to_contain_text("You are logged out")
    await page.goto(base + "/auth/login?next=/account/")
    await page.get_by_role("button", name="Sign in with a passkey").click()
    await expect(page).to_have_url(base + "/account/")
    await expect(page.locator(".user-chip")).to_contain_text("Ann Example")
    await expect(row).not_to_contain_text("never")  # last used: just now
    await page.screenshot(path=screenshot_path(f"passkey-signed-in-{backend}"), full_page=True)
    held = await devtools.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})
    assert held["credentials"][0]["signCount"] >= 1
    assert problems == []


async def sign_up_with_a_passkey(page: Page, base: str) -> None:
    await page.goto(base + "/auth/signup")
    await page.get_by_label("Email address").fill("ann@example.com")
    await page.get_by_label("Your name").fill("Ann Example")
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_role("button", name="Sign up").click()
    await page.goto(base + "/account/")
    await page.get_by_label("Passkey name").fill("Laptop")
    await page.get_by_role("button", name="Add a passkey").click()
    await expect(page.locator(".flash")).to_contain_text("is added")


async def test_the_email_fields_autofill_offers_the_passkey(
    page: Page, localhost_server: LiveServer
) -> None:
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    await virtual_authenticator(page)
    base = localhost_server.url
    await sign_up_with_a_passkey(page, base)
    await page.get_by_role("button", name="Log out", exact=True).click()
    await expect(page.locator(".flash")).to_contain_text("You are logged out")
    await page.goto(base + "/auth/login")
    # The virtual authenticator answers the autofill's ceremony as a person choosing the
    # passkey from the field's suggestions would.
    await page.get_by_label("Email address").focus()
    await expect(page.locator(".user-chip")).to_contain_text("Ann Example")
    assert problems == []


async def test_a_second_passkey_on_the_same_authenticator_is_refused_by_the_browser(
    page: Page, localhost_server: LiveServer
) -> None:
    await virtual_authenticator(page)
    base = localhost_server.url
    await page.goto(base + "/auth/signup")
    await page.get_by_label("Email address").fill("ann@example.com")
    await page.get_by_label("Your name").fill("Ann Example")
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_role("button", name="Sign up").click()
    await page.goto(base + "/account/")
    await page.get_by_label("Passkey name").fill("Laptop")
    await page.get_by_role("button", name="Add a passkey").click()
    await expect(page.locator(".flash")).to_contain_text("is added")
    # The options exclude it: the authenticator says it holds one for this account already.
    await page.get_by_label("Passkey name").fill("Laptop again")
    await page.get_by_role("button", name="Add a passkey").click()
    await expect(page.locator("[data-passkey-message]")).to_contain_text("already")
    await expect(page.locator("#passkeys tr[data-passkey]")).to_have_count(1)
