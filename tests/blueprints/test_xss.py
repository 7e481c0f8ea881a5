"""Every field a person can type into, rendered on every page that shows it, with the XSS corpus."""

from __future__ import annotations

from quart import Quart
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from app.errors import Invalid
from app.models import Issue, Membership, User
from app.services import comments, issues, projects
from tests.factories import make_project, make_user
from tests.pages import PASSWORD, log_in
from tests.xss.checks import assert_no_executable_html, load_payloads

PAGE_SIZE = 50


async def plant_payloads(app: Quart) -> tuple[list[str], list[str]]:
    """Put every payload in every field; returns the issue keys and the pages to read."""
    payloads = load_payloads()
    settings = app.extensions["account_settings"]
    async with app.extensions["database"].sessionmaker() as session:
        owner = await make_user(session, email="owner@example.com", display_name="Owner")
        owner_id = owner.id
        project_id = (await make_project(session, owner, key="XSS", is_public=True)).id
        for number, payload in enumerate(payloads):
            # People's names: refused when they hold line breaks, else shown as text.
            try:
                person = await make_user(session, display_name=payload[:100])
            except DBAPIError:  # a name the database refuses (a NUL byte) is no risk
                await session.rollback()
                continue
            if number % 25 == 0:
                session.add(Membership(project_id=project_id, user_id=person.id, role="member"))
                await session.commit()
        for payload in payloads:
            issue = await issues.create_issue(
                session, owner, project_id, title=payload[:200] or "x", description=payload
            )
            await comments.add_comment(session, owner, issue.id, payload)
        for payload in payloads[:60]:
            try:
                await projects.save_label(
                    session, owner, project_id, name=payload[:50], color="#123456"
                )
                await projects.add_status(
                    session, owner, project_id, name=payload[:50], category="todo"
                )
            except Invalid:  # duplicates and empty names are refused
                continue
        await projects.update_settings(
            session,
            owner,
            project_id,
            name=payloads[0][:100],
            description=payloads[1],
            is_public=True,
        )
        keys = [f"XSS-{number}" for number in await session.scalars(select(Issue.number))]
        user = await session.get(User, owner_id)
        user.password_hash = await settings.hasher.hash(PASSWORD)
        await session.commit()
    pages = [
        "/",
        "/projects",
        "/issues?tab=reported",
        "/issues?tab=watching",
        "/p/XSS/members",
        "/p/XSS/settings",
        "/search?q=is:open",
        "/u/" + owner.handle,
    ]
    return keys, pages


async def test_no_payload_survives_on_any_page(app: Quart, client) -> None:
    keys, pages = await plant_payloads(app)
    assert len(keys) >= 200
    assert (await log_in(client, "owner@example.com")).status_code == 302
    checked = 0
    for path in pages + [f"/{key}" for key in keys]:
        response = await client.get(path)
        assert response.status_code == 200, path
        assert_no_executable_html(await response.get_data(as_text=True))
        checked += 1
    # The issue list, page by page.
    path = "/p/XSS?q=is:open"
    while path:
        response = await client.get(path)
        page = await response.get_data(as_text=True)
        assert_no_executable_html(page)
        checked += 1
        marker = 'rel="next" href="?'
        path = (
            "/p/XSS?" + page.split(marker, 1)[1].split('"', 1)[0].replace("&amp;", "&")
            if marker in page
            else ""
        )
    assert checked >= len(keys) + len(pages) + 4
