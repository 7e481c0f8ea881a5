"""A person signs up in a real browser and confirms the address from the email."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect

from tests.e2e.conftest import LiveServer, screenshot_path, wait_for_mail
from tests.mailcatcher import MailCatcher
from tests.pages import PASSWORD

pytestmark = pytest.mark.browser


async def test_sign_up_follow_the_emailed_link_and_land_logged_in(
    page: Page, live_server: LiveServer, mailbox: MailCatcher, backend: str
) -> None:
    problems: list[str] = []
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))
    page.on("pageerror", lambda error: problems.append(str(error)))

    await page.goto(live_server.url + "/")
    await page.get_by_role("link", name="Sign up").click()
    await page.get_by_label("Email address").fill("ann@example.com")
    await page.get_by_label("Your name").fill("Ann Example")
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_role("button", name="Sign up").click()

    banner = page.locator(".banner")
    await expect(banner).to_contain_text("Confirm your address")
    await expect(page.locator(".user-chip")).to_contain_text("Ann Example")

    [mail] = await wait_for_mail(mailbox, "ann@example.com")
    link = mail.link()
    assert link.startswith(live_server.url + "/auth/verify/")
    await page.goto(link)

    await expect(page.locator(".flash")).to_contain_text("Your address is confirmed")
    await expect(banner).to_have_count(0)
    await expect(page.locator(".user-chip")).to_contain_text("Ann Example")
    await page.screenshot(path=screenshot_path(f"signup-confirmed-{backend}"), full_page=True)
    assert problems == []
