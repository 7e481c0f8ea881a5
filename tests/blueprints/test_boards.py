"""The board's routes: a move names its board, and only that board's cards move on it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from quart import Quart
from sqlalchemy import select

from app.models import Issue
from app.services import projects
from tests.factories import make_issue, make_project, make_user
from tests.pages import PASSWORD, log_in, submit

if TYPE_CHECKING:  # as a module name, pytest would try to collect it as a test class
    from quart.typing import TestClientProtocol


async def test_a_card_of_another_project_cannot_be_moved_on_this_board(
    app: Quart, client: TestClientProtocol
) -> None:
    hasher = app.extensions["account_settings"].hasher
    async with app.extensions["database"].sessionmaker() as session:
        owner = await make_user(
            session, email="owner@example.com", password_hash=await hasher.hash(PASSWORD)
        )
        web = await make_project(session, owner, key="WEB")
        api = await make_project(session, owner, key="API")
        await make_issue(session, owner, web)
        elsewhere = await make_issue(session, owner, api)
        done = (await projects.workflow(session, api.id))[-1]
        web_done = (await projects.workflow(session, web.id))[-1]
    await log_in(client, "owner@example.com")

    form = {"issue": str(elsewhere.id), "status": str(done.id), "version": "1"}
    refused = await submit(client, "/p/WEB/board/moves", form)
    assert refused.status_code == 404
    async with app.extensions["database"].sessionmaker() as session:
        unchanged = await session.scalar(select(Issue).where(Issue.id == elsewhere.id))
        assert (unchanged.status_id, unchanged.version) == (elsewhere.status_id, 1)

    # On its own board the same move goes through (so the refusal above is the board's rule).
    moved = await submit(client, "/p/API/board/moves", form, headers={"Accept": "application/json"})
    assert moved.status_code == 200, await moved.get_data(as_text=True)
    assert (await moved.get_json())["status_id"] == done.id != web_done.id
