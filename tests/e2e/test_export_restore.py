"""Export and restore in a real browser: download the archive from the settings page, restore
it from the projects list under another key, and see the restored project's board."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Page, expect
from sqlalchemy import select

from app.models import User
from tests.e2e.conftest import LiveServer
from tests.e2e.test_tracker import log_in, make_account, watch_for_problems
from tests.factories import make_issue, make_project

pytestmark = pytest.mark.browser


async def test_download_the_archive_restore_it_and_see_the_board(
    page: Page, live_server: LiveServer, tmp_path: Path
) -> None:
    problems = watch_for_problems(page)
    await make_account(live_server, "ann@example.com", "Ann Example")
    async with live_server.app.extensions["database"].sessionmaker() as session:
        ann = await session.scalar(select(User).where(User.email == "ann@example.com"))
        session.expunge(ann)
        project = await make_project(session, ann, key="WEB")
        for title in ("Rocket engine stalls", "Fuel gauge lies"):
            await make_issue(session, ann, project, title=title)
    runner = live_server.app.extensions["import_runner"]
    runner.start()  # the testing config leaves it off; the served app runs it like this
    try:
        await log_in(page, live_server, "ann@example.com")
        await page.goto(live_server.url + "/p/WEB/settings")
        async with page.expect_download() as waiting:
            await page.get_by_role("link", name="Download the archive").click()
        download = await waiting.value
        assert download.suggested_filename == "web-archive.zip"
        saved = tmp_path / download.suggested_filename
        await download.save_as(saved)
        assert saved.read_bytes()[:2] == b"PK"

        await page.goto(live_server.url + "/projects")
        await page.get_by_role("link", name="Restore a project from an archive").click()
        await page.get_by_label("Archive", exact=True).set_input_files(str(saved))
        await page.get_by_label("Key (if the archive's is taken here)").fill("COPY")
        await page.get_by_role("button", name="Restore", exact=True).click()
        progress = page.locator("#import-progress")
        await expect(progress).to_have_attribute("data-status", "done", timeout=15_000)
        await expect(progress).to_contain_text("Restored COPY")
        await page.get_by_role("link", name="See the board").click()
        await expect(page).to_have_url(f"{live_server.url}/p/COPY/board")
        await expect(page.get_by_text("Rocket engine stalls")).to_be_visible()
        await expect(page.get_by_text("Fuel gauge lies")).to_be_visible()
    finally:
        await runner.stop()
    assert problems == []
