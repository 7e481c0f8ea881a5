"""An import in a real browser: upload a Jira CSV on the settings page, watch the job page
reach done and show its summary without reloading."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect
from sqlalchemy import select

from app.models import User
from tests.e2e.conftest import LiveServer
from tests.e2e.test_tracker import log_in, make_account, watch_for_problems
from tests.factories import make_project
from tests.importing.exports import jira_csv, jira_row

pytestmark = pytest.mark.browser


async def test_upload_a_jira_csv_and_watch_the_job_finish(
    page: Page, live_server: LiveServer, tmp_path
) -> None:
    problems = watch_for_problems(page)
    await make_account(live_server, "ann@example.com", "Ann Example")
    async with live_server.app.extensions["database"].sessionmaker() as session:
        ann = await session.scalar(select(User).where(User.email == "ann@example.com"))
        session.expunge(ann)
        await make_project(session, ann, key="WEB")
    export = tmp_path / "jira.csv"
    rows = [jira_row(f"ABC-{n}", f"Imported {n}", status="Waiting for QA") for n in range(1, 41)]
    export.write_text(jira_csv(rows))
    runner = live_server.app.extensions["import_runner"]
    runner.start()  # the testing config leaves it off; the served app runs it like this
    try:
        await log_in(page, live_server, "ann@example.com")
        await page.goto(live_server.url + "/p/WEB/settings")
        await page.get_by_label("From").select_option("jira")
        await page.get_by_label("Export file").set_input_files(str(export))
        await page.get_by_role("button", name="Import", exact=True).click()
        await expect(page).to_have_url(f"{live_server.url}/p/WEB/imports/1")
        # The page was not reloaded: the marker set on it now survives to the end.
        await page.evaluate("() => { window.sameDocument = true; }")
        progress = page.locator("#import-progress")
        await expect(progress).to_have_attribute("data-status", "done", timeout=15_000)
        await expect(progress).to_contain_text("Imported 40 issues (WEB-1 to WEB-40)")
        await expect(progress).to_contain_text("Waiting for QA (todo)")
        assert await page.evaluate("() => window.sameDocument === true")
        assert await page.locator("progress").get_attribute("value") == "40"
    finally:
        await runner.stop()
    assert problems == []
