"""What a page's texts link to: the people who exist, the issues the viewer may read."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Role
from app.rendering.markdown import render_markdown
from app.services.references import link_targets
from tests.factories import add_member, make_issue, make_project, make_user
from tests.rendering.test_markdown import reference


@contextmanager
def counting_statements(session: AsyncSession) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(connection, cursor, statement, parameters, context, executemany) -> None:
        if statement.lstrip().upper().startswith("SELECT"):  # not SQLite's BEGIN
            statements.append(statement)

    engine = session.bind.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


@pytest.fixture
async def tracker(session: AsyncSession) -> dict:
    """A public project, a private one the reader belongs to and a private one they do not,
    each with one issue; and a reader, an outsider with no membership."""
    owner = await make_user(session)
    reader = await make_user(session)
    outsider = await make_user(session)
    public = await make_project(session, owner, key="PUB", is_public=True)
    mine = await make_project(session, owner, key="MINE")
    secret = await make_project(session, owner, key="SEC")
    await add_member(session, mine, reader, Role.VIEWER)
    for project in (public, mine, secret):
        await make_issue(session, owner, project)
    return {"owner": owner, "reader": reader, "outsider": outsider}


TEXTS = [
    "PUB-1 and MINE-1 and SEC-1; `PUB-2` is code",
    "NOPE-1, PUB-99 and MINE-2 do not exist",
]


async def test_references_are_the_issues_the_viewer_may_read(
    session: AsyncSession, tracker: dict
) -> None:
    targets = await link_targets(session, tracker["reader"], TEXTS)
    references = targets.references
    assert references == {"PUB-1": "/PUB-1", "MINE-1": "/MINE-1"}
    assert {"PUB-1", "MINE-1", "SEC-1"} <= targets.named  # named, whether readable or not
    html = str(render_markdown(TEXTS[0], references=references))
    assert reference("PUB-1") in html and reference("MINE-1") in html
    assert "SEC-1" in html and 'href="/SEC-1"' not in html


async def test_an_outsider_sees_only_public_issues(session: AsyncSession, tracker: dict) -> None:
    targets = await link_targets(session, tracker["outsider"], TEXTS)
    assert targets.references == {"PUB-1": "/PUB-1"}


async def test_an_anonymous_reader_gets_no_references(session: AsyncSession, tracker: dict) -> None:
    assert (await link_targets(session, None, TEXTS)).references == {}


async def test_mentions_are_the_people_who_exist(session: AsyncSession, tracker: dict) -> None:
    handle = tracker["reader"].handle
    texts = [f"@{handle} and @{handle.upper()}", "@nobody-here, `@" + tracker["owner"].handle + "`"]
    assert (await link_targets(session, None, texts)).mentions == {handle: f"/u/{handle}"}


async def test_link_targets_asks_once_for_people_and_once_for_issues(
    session: AsyncSession, tracker: dict
) -> None:
    handles = [tracker[name].handle for name in ("owner", "reader", "outsider")]
    texts = [f"@{handle} on PUB-1, MINE-1, SEC-1" for handle in handles] * 20
    with counting_statements(session) as statements:
        targets = await link_targets(session, tracker["reader"], texts)
    assert len(statements) == 2
    assert set(targets.mentions) == set(handles)
    assert set(targets.references) == {"PUB-1", "MINE-1"}

    with counting_statements(session) as statements:
        nothing = await link_targets(session, tracker["reader"], ["no names", "`@x WEB-1`"])
    assert (nothing.mentions, nothing.references, nothing.named) == ({}, {}, frozenset())
    assert statements == []
