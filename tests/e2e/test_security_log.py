"""A person fails a login, then logs in, and reads both on their security log in a real browser."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, expect
from sqlalchemy import update

from app.models import User
from app.services import audit
from tests.e2e.conftest import LiveServer, screenshot_path
from tests.factories import make_user
from tests.pages import PASSWORD

pytestmark = pytest.mark.browser


async def test_a_failed_and_a_good_login_show_on_the_security_log(
    page: Page, live_server: LiveServer, backend: str
) -> None:
    app = live_server.app
    hashed = await app.extensions["account_settings"].hasher.hash(PASSWORD)
    async with app.extensions["database"].sessionmaker() as session:
        await make_user(session, email="ann@example.com", password_hash=hashed)
    problems: list[str] = []
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))
    page.on("pageerror", lambda error: problems.append(str(error)))

    await page.goto(live_server.url + "/auth/login")
    await page.get_by_label("Email address").fill("ann@example.com")
    await page.get_by_label("Password").fill("not my password")
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_text("Wrong email or password.")).to_be_visible()
    problems.clear()  # the refused login's own 400, which the console reports

    await page.get_by_label("Email address").fill("ann@example.com")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.locator(".user-chip")).to_be_visible()

    await page.goto(live_server.url + "/account/")
    await page.get_by_role("link", name="Your security log").click()
    rows = page.locator("table.audit-events tbody tr")
    await expect(rows).to_have_count(2)
    await expect(rows.nth(0)).to_contain_text("Signed in with a password from 127.0.0.1, Chrome")
    await expect(rows.nth(1)).to_contain_text("A sign-in failed (wrong email or password)")
    when = rows.nth(0).locator("time")
    await expect(when).to_have_text("just now")
    await expect(when).to_have_attribute(
        "title", re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$")
    )
    await page.screenshot(path=screenshot_path(f"security-log-{backend}"), full_page=True)
    assert problems == []


async def test_an_admin_filters_the_audit_log_and_a_bad_date_is_a_form_message(
    page: Page, live_server: LiveServer, backend: str
) -> None:
    app = live_server.app
    hashed = await app.extensions["account_settings"].hasher.hash(PASSWORD)
    async with app.extensions["database"].sessionmaker() as session:
        root = await make_user(session, email="root@example.com", password_hash=hashed)
        await session.execute(update(User).where(User.id == root.id).values(is_admin=True))
        await session.commit()
        await audit.record_refusal(
            session, audit.AuditAction.LOGIN_FAILED, actor=None, subject_email="eve@example.com"
        )
    await page.goto(live_server.url + "/auth/login")
    await page.get_by_label("Email address").fill("root@example.com")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.locator(".user-chip")).to_be_visible()

    await page.goto(live_server.url + "/admin/audit")
    rows = page.locator("table.audit-events tbody tr")
    await expect(rows).to_have_count(2)
    await page.get_by_label("Actions").select_option("login.failed")
    await page.get_by_role("button", name="Search").click()
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("eve@example.com")
    csv_link = page.get_by_role("link", name="Export CSV")
    await expect(csv_link).to_have_attribute("href", "/admin/audit/export.csv?action=login.failed")
    await page.screenshot(path=screenshot_path(f"admin-audit-{backend}"), full_page=True)

    await page.goto(live_server.url + "/admin/audit?since=2026-02-30")
    await expect(page.locator(".field-error")).to_have_text("Give a date as YYYY-MM-DD.")
