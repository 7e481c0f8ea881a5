"""A sample of the XSS corpus in Chromium, with a trap that records any script that runs."""

from __future__ import annotations

import pytest
from playwright.async_api import Page
from sqlalchemy import select

from app.models import User
from app.services import comments, issues
from tests.e2e.conftest import LiveServer
from tests.e2e.test_tracker import log_in, make_account
from tests.factories import make_project
from tests.xss.checks import load_payloads

pytestmark = pytest.mark.browser

SAMPLE = 40
TRAP = """
window.__xss_hits = [];
window.__xss__ = (n) => window.__xss_hits.push(String(n));
for (const name of ["alert", "confirm", "prompt", "print"]) {
  window[name] = (value) => window.__xss_hits.push(name + ":" + value);
}
"""


async def test_a_sample_of_payloads_never_runs_in_the_browser(
    page: Page, live_server: LiveServer
) -> None:
    payloads = [p for p in load_payloads() if "__xss__" in p or "alert" in p]
    sample = payloads[:: max(1, len(payloads) // SAMPLE)][:SAMPLE]
    await make_account(live_server, "ann@example.com", "Ann Example")
    async with live_server.app.extensions["database"].sessionmaker() as session:
        ann = await session.scalar(select(User).where(User.email == "ann@example.com"))
        session.expunge(ann)
        project_id = (await make_project(session, ann, key="TRAP")).id
        for payload in sample:
            issue = await issues.create_issue(
                session, ann, project_id, title=payload[:200], description=payload
            )
            await comments.add_comment(session, ann, issue.id, payload)

    await page.add_init_script(TRAP)
    await log_in(page, live_server, "ann@example.com")
    # The trap is armed: a call is recorded (so an empty list below means nothing ran).
    assert await page.evaluate("alert('control'); window.__xss_hits") == ["alert:control"]
    for number in range(1, len(sample) + 1):
        await page.goto(f"{live_server.url}/TRAP-{number}")
        await page.wait_for_load_state("load")
        # Hover and focus everything, for payloads that wait for a person.
        for element in await page.locator(".markdown a, .issue-title-text").all():
            await element.hover()
        assert await page.evaluate("window.__xss_hits") == [], sample[number - 1]
    await page.goto(f"{live_server.url}/p/TRAP?q=is:open")
    assert await page.evaluate("window.__xss_hits") == []
    print(f"XSS trap: {len(sample)} payloads in Chromium, 0 executions")
