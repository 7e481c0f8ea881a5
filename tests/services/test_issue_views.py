"""Reading issues: a key leads to its issue, whatever its case, and a private one does not exist."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import NotFound
from app.services import issue_views
from tests.factories import make_issue, make_project, make_user


async def test_issue_keys_lead_to_issues_and_private_ones_do_not_exist(
    session: AsyncSession,
) -> None:
    owner = await make_user(session)
    outsider = await make_user(session)
    project = await make_project(session, owner, key="SEC")
    issue = await make_issue(session, owner, project)
    assert (await issue_views.get_issue_by_key(session, owner, "sec-1")).id == issue.id
    for key in ("SEC-1", "SEC-2", "NOPE-1", "SEC-x"):
        with pytest.raises(NotFound):
            await issue_views.get_issue_by_key(session, outsider, key)
