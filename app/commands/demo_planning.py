"""Demo data for planning: a parent with sub-issues (one nested), and relations of each kind,
across projects too, so a newcomer sees them at once."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.models import User
from app.services import issues, projects, relations
from app.services.issue_views import issue_heading
from app.services.issues import IssueChanges

SUB_ISSUES = [
    ("Design the new sign-up form", True),
    ("Write the welcome email", True),
    ("Add a password strength meter", False),
    ("Translate the form into French", False),
    ("Measure the funnel before and after", False),
]


async def seed_planning(session: AsyncSession, people: list[User]) -> int:
    """Add the planning demo to the seeded WEB and API projects; returns the issues created."""
    ada, grace = people[0], people[1]
    web = await projects.project_by_key(session, ada, "WEB")
    done = next(status for status in await projects.workflow(session, web.id) if status.is_done)
    parent = await issues.create_issue(
        session,
        ada,
        web.id,
        title="Launch the new sign-up flow",
        description="The sign-up flow, redone: its parts are the sub-issues below.",
        type="feature",
    )
    parent_key = f"WEB-{parent.number}"
    created = 1
    first_child = None
    for title, finished in SUB_ISSUES:
        child = await issues.create_issue(session, grace, web.id, title=title, parent=parent_key)
        created += 1
        first_child = first_child or child
        if finished:
            await issues.update_issue(
                session, grace, child.id, IssueChanges(status_id=done.id), expected_version=None
            )
    assert first_child is not None
    await issues.create_issue(
        session, ada, web.id, title="Pick the form's colours", parent=f"WEB-{first_child.number}"
    )
    created += 1
    await relations.add_relation(session, ada, parent.id, "blocked_by", "WEB-1")
    await relations.add_relation(session, ada, parent.id, "relates_to", "API-1")
    web_issue = await _issue_id(session, ada, "WEB-2")
    await relations.add_relation(session, grace, web_issue, "blocked_by", "API-2")
    await relations.add_relation(
        session,
        grace,
        await _issue_id(session, ada, "WEB-4"),
        "duplicates",
        "WEB-3",
        close_duplicate=True,
    )
    return created


async def _issue_id(session: AsyncSession, viewer: User, key: str) -> int:
    return (await issue_heading(session, viewer, key)).id
