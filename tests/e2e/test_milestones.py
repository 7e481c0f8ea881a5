"""A milestone with history in a real browser: its burn-up chart drawn by uPlot, and the same
numbers as a table, which is all a browser without JavaScript gets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, expect
from sqlalchemy import select, update

from app.models import Activity, Milestone, User
from app.services import issues, milestones, projects
from app.services.issues import IssueChanges
from tests.e2e.conftest import LiveServer, screenshot_path
from tests.e2e.test_tracker import log_in, make_account, watch_for_problems

pytestmark = pytest.mark.browser


@pytest_asyncio.fixture(autouse=True)
async def close_the_browsers(browser: Browser) -> AsyncIterator[None]:
    yield
    for context in list(browser.contexts):
        await context.close()


async def _milestone_with_history(server: LiveServer) -> str:
    """WEB's milestone 1.0, four days old: two issues planned on day one, one done on day three."""
    async with server.app.extensions["database"].sessionmaker() as session:
        ann = await session.scalar(select(User).where(User.email == "ann@example.com"))
        session.expunge(ann)
        project = await projects.create_project(session, ann, key="WEB", name="Website")
        release = await milestones.create_milestone(session, ann, project.id, title="1.0")
        done = (await projects.workflow(session, project.id))[-1].id
        first = await issues.create_issue(
            session, ann, project.id, title="Sign-in page", milestone_id=release.id
        )
        await issues.create_issue(
            session, ann, project.id, title="Sign-up page", milestone_id=release.id
        )
        start = datetime.now(UTC) - timedelta(days=4)
        await session.execute(update(Activity).values(created_at=start))
        await session.execute(update(Milestone).values(created_at=start))
        await session.commit()
        await issues.update_issue(
            session, ann, first.id, IssueChanges(status_id=done), expected_version=None
        )
        await session.execute(
            update(Activity)
            .where(Activity.created_at > start + timedelta(hours=1))
            .values(created_at=start + timedelta(days=2))
        )
        await session.commit()
        return f"/p/WEB/milestones/{release.id}"


async def _painted_pixels(page: Page) -> int:
    return await page.evaluate(
        """() => {
          const canvas = document.querySelector("[data-burn-up-chart] canvas");
          const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
          let painted = 0;
          for (let i = 3; i < pixels.data.length; i += 4) if (pixels.data[i]) painted++;
          return painted;
        }"""
    )


async def test_the_burn_up_chart_is_drawn_and_readable_as_a_table(
    browser: Browser, live_server: LiveServer, backend: str
) -> None:
    await make_account(live_server, "ann@example.com", "Ann Example")
    path = await _milestone_with_history(live_server)
    page = await (await browser.new_context()).new_page()
    problems = watch_for_problems(page)
    await log_in(page, live_server, "ann@example.com")
    await page.goto(live_server.url + path)

    chart = page.locator("[data-burn-up-chart]")
    await expect(chart.locator("canvas")).to_be_visible()
    assert await chart.evaluate("holder => holder.burnUpChart.data[1].at(-1)") == 2
    assert await chart.evaluate("holder => holder.burnUpChart.data[2].at(-1)") == 1
    assert await _painted_pixels(page) > 500
    await expect(page.locator(".u-legend")).to_contain_text("Done")
    table = page.locator("[data-burn-up-table]")
    await expect(table).not_to_have_attribute("open", "")  # folded under the chart
    await page.screenshot(path=screenshot_path("milestone-burn-up"), full_page=True)
    assert problems == []

    # Without JavaScript: no chart, the table open with the same numbers.
    context = await browser.new_context(java_script_enabled=False)
    plain = await context.new_page()
    await log_in(plain, live_server, "ann@example.com")
    await plain.goto(live_server.url + path)
    rows = plain.locator("[data-burn-up-table] tbody tr")
    await expect(rows.last).to_contain_text("2")
    await expect(plain.locator("[data-burn-up-table]")).to_have_attribute("open", "")
    assert await plain.locator("[data-burn-up-chart] canvas").count() == 0
    texts = await rows.all_inner_texts()
    assert texts[0].split("\t")[1:] == ["2", "0"] and texts[-1].split("\t")[1:] == ["2", "1"]
