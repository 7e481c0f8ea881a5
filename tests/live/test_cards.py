"""Board cards are rendered once per state of an issue, and never shown stale."""

from __future__ import annotations

from quart import Quart

from app.services import accounts, issues, projects
from app.services.issues import IssueChanges
from tests.live.test_stream import session_of, team


async def test_a_card_is_rendered_once_until_something_it_shows_changes(app: Quart) -> None:
    t = await team(app)
    cards = app.extensions["cards"]
    async with await session_of(app) as session:
        bug = await projects.save_label(session, t.owner, t.project_id, name="bug", color="#ff0000")
        first = await issues.create_issue(session, t.owner, t.project_id, title="Checkout fails")
        await issues.create_issue(session, t.owner, t.project_id, title="Slow search")
        await issues.update_issue(
            session,
            t.owner,
            first.id,
            IssueChanges(label_ids=[bug.id], assignee_id=t.member.id),
            expected_version=first.version,
        )
    board = await t.owner_client.get("/p/LIVE/board")
    assert board.status_code == 200
    rendered = cards.renders
    assert rendered == 2
    assert (await t.owner_client.get("/p/LIVE/board")).status_code == 200
    assert cards.renders == rendered  # the second view renders nothing again

    # Changes made elsewhere than on the issue show on the next view.
    async with await session_of(app) as session:
        await projects.save_label(
            session, t.owner, t.project_id, name="defect", color="#00ff00", label_id=bug.id
        )
        await accounts.change_display_name(session, t.member.id, "Mem Ber")
    page = await (await t.owner_client.get("/p/LIVE/board")).get_data(as_text=True)
    assert "defect" in page and ">bug<" not in page
    assert 'title="Mem Ber"' in page
    assert cards.renders == rendered + 1  # only the card that shows them
