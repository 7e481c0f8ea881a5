"""The main pages send a fixed number of SQL statements, however many issues and comments they show.

Each page is rendered for a small project and for a larger one (more issues, comments, labels,
assignees and commenters), logged in as each project's owner, while a cursor-execute hook counts
the statements. A count that grows with the data is an N+1: a relationship loaded per row.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from quart import Quart
from sqlalchemy import event

from app.models import User
from app.services import comments, issue_views, issues, projects
from tests.factories import add_member, make_project, make_user
from tests.pages import PASSWORD, log_in

# Far above what any page needs today, far below one statement per row of the larger project.
STATEMENTS_MAX = 40

PAGES = {
    "issue list": "/p/{key}?q=is:open",
    "issue page with comments": "/{key}-1",
    "board": "/p/{key}/board",
    "search": "/search?q=project:{key}+searchable",
    "my issues (assigned)": "/issues",
    "my issues (reported)": "/issues?tab=reported",
    "my issues (watching)": "/issues?tab=watching",
}


@dataclass
class Tracker:
    key: str
    owner: User


async def make_tracker(app: Quart, key: str, *, issue_count: int, comment_count: int) -> Tracker:
    """A project whose owner reports every issue, is assigned half of them and watches them all;
    the first issue carries the comments, by several people, each naming the owner."""
    hasher = app.extensions["account_settings"].hasher
    async with app.extensions["database"].sessionmaker() as session:
        owner = await make_user(
            session, email=f"{key.lower()}@example.com", password_hash=await hasher.hash(PASSWORD)
        )
        project = await make_project(session, owner, key=key)
        people = [await make_user(session) for _ in range(3)]
        for person in people:
            await add_member(session, project, person)
        labels = [
            (await projects.save_label(session, owner, project.id, name=name, color="#123456")).id
            for name in ("bug", "ui", "docs")
        ]
        assignees = [owner, *people]
        for n in range(issue_count):
            await issues.create_issue(
                session,
                owner,
                project.id,
                title=f"Searchable issue {n}",
                description=f"Described for @{owner.handle}",
                assignee_id=assignees[n % 2 * (1 + n % 3)].id,
                label_ids=labels[: 1 + n % 3],
            )
        first = await issue_views.get_issue(session, owner, project.id, 1)
        for n in range(comment_count):
            await comments.add_comment(
                session, people[n % 3], first.id, f"Comment {n} for @{owner.handle}, see {key}-2"
            )
    return Tracker(key, owner)


@contextmanager
def counting_statements(app: Quart) -> Iterator[list[str]]:
    engine = app.extensions["database"].engine.sync_engine
    sent: list[str] = []

    def count(connection: Any, cursor: Any, statement: str, *_: Any) -> None:
        sent.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", count)


async def statements_per_page(app: Quart, tracker: Tracker) -> dict[str, int]:
    client = app.test_client()
    await log_in(client, tracker.owner.email)
    counts = {}
    for page, path in PAGES.items():
        url = path.format(key=tracker.key)
        await client.get(url)  # once before counting: what a first visit does only once
        with counting_statements(app) as sent:
            response = await client.get(url)
        assert response.status_code == 200, (page, response.status_code)
        counts[page] = len(sent)
    return counts


async def test_each_page_sends_as_many_statements_for_many_rows_as_for_few(app: Quart) -> None:
    few = await make_tracker(app, "FEW", issue_count=3, comment_count=2)
    many = await make_tracker(app, "MANY", issue_count=14, comment_count=9)

    with_few = await statements_per_page(app, few)
    with_many = await statements_per_page(app, many)

    assert with_many == with_few
    assert max(with_many.values()) <= STATEMENTS_MAX, with_many
