"""Two-factor in a real browser: turn it on from the account page with the key shown there,
log out, and log in again with the password and a code from the "app" (pyotp)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.e2e.conftest import LiveServer, screenshot_path
from tests.e2e.test_tracker import make_account, watch_for_problems
from tests.pages import PASSWORD
from tests.totp import code_at, steady_step

pytestmark = pytest.mark.browser


async def test_enrol_from_the_account_page_then_log_in_with_a_code(
    page: Page, live_server: LiveServer, backend: str
) -> None:
    problems = watch_for_problems(page)
    await make_account(live_server, "ann@example.com", "Ann Example")
    await page.goto(live_server.url + "/auth/login?next=/account/")
    await page.get_by_label("Email address").fill("ann@example.com")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()

    await page.get_by_role("button", name="Enable two-factor authentication").click()
    await expect(page.locator(".qr-code svg")).to_be_visible()
    secret = (await page.locator("[data-totp-secret]").inner_text()).strip()
    await page.screenshot(path=screenshot_path(f"two-factor-enrol-{backend}"), full_page=True)
    await expect(page.get_by_label("Code")).to_have_attribute("autocomplete", "one-time-code")
    steady_step()
    await page.get_by_label("Code").fill(code_at(secret, -1))
    await page.get_by_role("button", name="Turn on two-factor").click()
    await expect(page.locator("[data-recovery-codes] li")).to_have_count(10)
    await page.screenshot(path=screenshot_path(f"two-factor-codes-{backend}"), full_page=True)
    shown = await page.locator("[data-recovery-codes] li").all_inner_texts()
    async with page.expect_download() as downloading:
        await page.get_by_role("link", name="Download as a text file").click()
    download = await downloading.value
    assert download.suggested_filename == "issues-recovery-codes.txt"
    saved = await asyncio.to_thread(Path(await download.path()).read_text)
    assert saved.split() == [code.strip() for code in shown]
    await page.get_by_role("link", name="I have saved them").click()
    await expect(page.locator("#two-factor")).to_contain_text("10 recovery codes left")

    await page.get_by_role("button", name="Log out", exact=True).click()
    await expect(page.locator(".flash")).to_contain_text("You are logged out")
    await page.goto(live_server.url + "/auth/login?next=/projects")
    await page.get_by_label("Email address").fill("ann@example.com")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()

    await expect(page.get_by_role("heading", name="Two-factor authentication")).to_be_visible()
    await expect(page.locator(".user-chip")).to_have_count(0)  # not logged in yet
    await expect(page.get_by_role("link", name="Use a recovery code instead")).to_be_visible()
    steady_step()
    await page.get_by_label("Code").fill(code_at(secret))
    await page.get_by_role("button", name="Verify").click()
    await expect(page.locator(".user-chip")).to_contain_text("Ann Example")
    assert page.url == live_server.url + "/projects"
    assert problems == []
