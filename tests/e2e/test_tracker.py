"""A person uses the tracker in a real browser: project, issue, in-place edits, comment, search."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Page, expect

from app.db import utcnow
from app.models import User
from tests.e2e.conftest import LiveServer, screenshot_path
from tests.pages import PASSWORD

pytestmark = pytest.mark.browser


async def make_account(server: LiveServer, email: str, name: str) -> None:
    """A validated account, made directly: signing up is the other browser test's job."""
    settings = server.app.extensions["account_settings"]
    async with server.app.extensions["database"].sessionmaker() as session:
        session.add(
            User(
                email=email,
                handle=email.split("@")[0],
                display_name=name,
                password_hash=await settings.hasher.hash(PASSWORD),
                email_verified_at=utcnow(),
            )
        )
        await session.commit()


async def log_in(page: Page, server: LiveServer, email: str) -> None:
    await page.goto(server.url + "/auth/login")
    await page.get_by_label("Email address").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.locator(".user-chip")).to_be_visible()


def watch_for_problems(page: Page) -> list[str]:
    problems: list[str] = []
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))
    page.on("pageerror", lambda error: problems.append(str(error)))
    return problems


async def test_create_a_project_and_an_issue_edit_it_in_place_comment_and_search(
    page: Page, live_server: LiveServer, backend: str
) -> None:
    problems = watch_for_problems(page)
    await make_account(live_server, "ann@example.com", "Ann Example")
    await log_in(page, live_server, "ann@example.com")

    await page.get_by_role("link", name="New project").first.click()
    await page.get_by_label("Name", exact=True).fill("Website")
    await page.get_by_label("Key", exact=True).fill("web")
    await page.get_by_role("button", name="Create the project").click()
    await expect(page.locator(".flash")).to_contain_text("Project WEB is ready")

    await page.keyboard.press("c")  # the shortcut for a new issue
    await page.get_by_label("Title").fill("Login button does nothing on Safari")
    await page.get_by_label("Description").fill("Steps:\n\n1. Open **/login** in Safari\n2. Click")
    await page.get_by_label("Priority").select_option("high")
    await page.get_by_role("button", name="Create the issue").click()
    await expect(page.locator(".flash")).to_contain_text("Created WEB-1")
    await expect(page.locator(".markdown strong")).to_have_text("/login")

    # In place: changing the status saves it, without a full page load.
    await page.evaluate("window.__marker = 'still here'")
    await page.get_by_label("Status").select_option(label="In progress")
    await expect(page.locator(".issue-badges .badge").first).to_have_text("In progress")
    assert await page.evaluate("window.__marker") == "still here"
    await expect(page.locator(".timeline-event").last).to_contain_text(
        "changed status from Backlog to In progress"
    )

    await page.get_by_label("Add a comment").fill("Reproduced on **Safari 18**.")
    await page.get_by_role("button", name="Comment").click()
    await expect(page.locator(".comment .markdown strong")).to_have_text("Safari 18")

    await page.keyboard.press("/")
    await page.keyboard.type("safari is:open")
    await page.keyboard.press("Enter")
    await expect(page.locator(".issue-table .issue-title")).to_have_text(
        ["Login button does nothing on Safari"]
    )
    assert problems == []


async def test_a_stale_edit_in_the_page_is_refused_and_says_what_changed(
    browser: Browser, live_server: LiveServer
) -> None:
    await make_account(live_server, "ann@example.com", "Ann Example")
    await make_account(live_server, "bob@example.com", "Bob Builder")
    ann = await (await browser.new_context()).new_page()
    bob = await (await browser.new_context()).new_page()
    await log_in(ann, live_server, "ann@example.com")
    await ann.goto(live_server.url + "/projects/new")
    await ann.get_by_label("Name", exact=True).fill("Website")
    await ann.get_by_label("Key", exact=True).fill("WEB")
    await ann.get_by_role("button", name="Create the project").click()
    await ann.goto(live_server.url + "/p/WEB/members")
    await ann.get_by_label("Their email address").fill("bob@example.com")
    await ann.get_by_role("button", name="Add").click()
    await ann.goto(live_server.url + "/p/WEB/issues/new")
    await ann.get_by_label("Title").fill("Shared issue")
    await ann.get_by_role("button", name="Create the issue").click()

    await log_in(bob, live_server, "bob@example.com")
    await bob.goto(live_server.url + "/WEB-1")
    await expect(bob.locator("#live[data-state='open']")).to_be_attached()
    # Bob is about to change the priority (the field has his focus) when Ann changes it: his
    # page shows her change live, but leaves the field he is in, which still says version 1.
    await bob.get_by_label("Priority").focus()
    await ann.get_by_label("Priority").select_option("urgent")
    await expect(ann.locator(".badge.priority-urgent")).to_be_visible()
    await expect(bob.locator(".issue-badges .priority-urgent")).to_be_visible()
    await bob.get_by_label("Priority").select_option("low")
    alert = bob.get_by_role("alert")
    await expect(alert).to_contain_text("Not saved")
    await expect(alert).to_contain_text("Ann Example changed priority from none to urgent")
    await expect(bob.get_by_label("Priority")).to_have_value("urgent")


@pytest.mark.parametrize("scheme", ["light", "dark"])
async def test_screenshots_of_the_pages_in_both_themes(
    browser: Browser, live_server: LiveServer, backend: str, scheme: str
) -> None:
    await make_account(live_server, "ann@example.com", "Ann Example")
    context = await browser.new_context(
        color_scheme=scheme, viewport={"width": 1280, "height": 800}
    )
    page = await context.new_page()
    problems = watch_for_problems(page)
    await log_in(page, live_server, "ann@example.com")
    await page.goto(live_server.url + "/projects/new")
    await page.get_by_label("Name", exact=True).fill("Website")
    await page.get_by_label("Key", exact=True).fill("WEB")
    await page.get_by_role("button", name="Create the project").click()
    for title in ("Checkout fails with a saved card", "Add dark theme to emails", "Slow search"):
        await page.goto(live_server.url + "/p/WEB/issues/new")
        await page.get_by_label("Title").fill(title)
        await page.get_by_label("Description").fill("Seen by **several** customers since Monday.")
        await page.get_by_role("button", name="Create the issue").click()
    await page.get_by_label("Add a comment").fill("Looking into it.")
    await page.get_by_role("button", name="Comment").click()
    for name, path in (
        ("issue", "/WEB-1"),
        ("list", "/p/WEB"),
        ("home", "/"),
        ("account", "/account/"),
    ):
        await page.goto(live_server.url + path)
        await page.screenshot(path=screenshot_path(f"{name}-{scheme}-{backend}"), full_page=True)
    phone = await browser.new_context(color_scheme=scheme, viewport={"width": 390, "height": 844})
    small = await phone.new_page()
    await log_in(small, live_server, "ann@example.com")
    await small.goto(live_server.url + "/WEB-1")
    await small.screenshot(path=screenshot_path(f"issue-phone-{scheme}-{backend}"), full_page=True)
    assert problems == []
