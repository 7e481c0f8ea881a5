"""Demo data: a few people, projects and a few hundred issues with comments and history."""

from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.commands.demo_attachments import seed_attachments
from app.commands.demo_milestones import plan_milestones
from app.commands.demo_planning import seed_planning
from app.db import utcnow
from app.models import IssueType, Priority, Role, User
from app.services import accounts, comments, issues, projects
from app.services.issues import IssueChanges
from app.storage import AttachmentStorage

PEOPLE = [
    ("ada@example.com", "Ada Lovelace"),
    ("grace@example.com", "Grace Hopper"),
    ("linus@example.com", "Linus Torvalds"),
    ("margaret@example.com", "Margaret Hamilton"),
    ("ken@example.com", "Ken Thompson"),
]
PROJECTS = [
    ("WEB", "Website", "The public site and its sign-up funnel.", True),
    ("API", "Public API", "The REST API and its SDKs.", False),
    ("OPS", "Operations", "Deploys, monitoring and on-call.", False),
]
LABELS = [("bug", "#dc2626"), ("ux", "#8b5cf6"), ("performance", "#f59e0b"), ("docs", "#0ea5e9")]
SUBJECTS = [
    "login page",
    "search box",
    "board",
    "email digest",
    "API tokens",
    "CSV export",
    "dark theme",
    "webhooks",
    "password reset",
    "project settings",
    "mobile layout",
]
PROBLEMS = [
    "is slow on large projects",
    "shows the wrong count",
    "breaks on Safari",
    "needs keyboard shortcuts",
    "should remember the last filter",
    "times out sometimes",
    "ignores the time zone",
    "could be clearer",
    "needs tests",
    "leaks memory",
]
COMMENTS = [
    "I can reproduce this on staging.",
    "Looks related to the last deploy.",
    "Working on it now.",
    "Could you attach the logs?",
    "Fixed in the next release.",
    "Let's discuss this in the planning meeting.",
    "+1, this bites us every week.",
]
DEMO_PASSWORD = "demo password 2026"  # noqa: S105  (documented in the README: demo data only)


async def seed_demo(
    session: AsyncSession,
    settings: accounts.AccountSettings,
    *,
    issues_per_project: int = 120,
    storage: AttachmentStorage | None = None,
) -> int:
    """Fill an empty database; returns the number of issues created. Refuses a used one."""
    if await session.scalar(select(User.id).limit(1)) is not None:
        raise RuntimeError("The database has users already; seed-demo fills only an empty one.")
    rng = random.Random(2026)  # the same demo every time
    people = [
        await accounts.create_admin(
            session, settings, email=email, display_name=name, password=DEMO_PASSWORD
        )
        for email, name in PEOPLE
    ]
    for person in people[1:]:
        person.is_admin = False
    await session.commit()
    created = 0
    for key, name, description, public in PROJECTS:
        owner = people[0]
        project = await projects.create_project(
            session, owner, key=key, name=name, description=description, is_public=public
        )
        for person in people[1:]:
            await projects.add_member(
                session, owner, project.id, email=person.email, role=Role.MEMBER.value
            )
        labels = [
            await projects.save_label(session, owner, project.id, name=label, color=color)
            for label, color in LABELS
        ]
        statuses = await projects.workflow(session, project.id)
        for _ in range(issues_per_project):
            reporter = rng.choice(people)
            issue = await issues.create_issue(
                session,
                reporter,
                project.id,
                title=f"{rng.choice(SUBJECTS).capitalize()} {rng.choice(PROBLEMS)}",
                description=f"Steps:\n\n1. Open the {rng.choice(SUBJECTS)}\n2. Watch it "
                f"{rng.choice(PROBLEMS)}\n\nExpected: it just works.",
                type=rng.choice(list(IssueType)),
                priority=rng.choice([*Priority, Priority.NONE]),  # "none" twice as often
                assignee_id=rng.choice([None, *[p.id for p in people]]),
                label_ids=[label.id for label in rng.sample(labels, rng.randint(0, 2))],
                due_date=(utcnow() + timedelta(days=rng.randint(1, 60))).date()
                if rng.random() < 0.2
                else None,
            )
            created += 1
            for _ in range(rng.randint(0, 3)):
                await comments.add_comment(
                    session, rng.choice(people), issue.id, rng.choice(COMMENTS)
                )
            if rng.random() < 0.6:
                await issues.update_issue(
                    session,
                    rng.choice(people),
                    issue.id,
                    IssueChanges(status_id=rng.choice(statuses).id),
                    expected_version=None,
                )
        await plan_milestones(session, people, project.id)
    created += await seed_planning(session, people)
    if storage is not None:
        await seed_attachments(session, storage, people)
    return created
