"""A milestone's page: its issues by status category and its burn-up chart from the activity log."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import Integer, case, cast, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.models import Activity, Issue, Milestone, StatusCategory, User, WorkflowStatus
from app.services.milestones import MilestoneSummary, get_milestone
from app.services.search.finder import ROW_DETAILS

SHOWN_PER_CATEGORY = 50  # more are a search away (milestone:"title")
# The events that may say an issue joined or left a milestone, or became done (their payload's
# "milestone" and "done", see services/milestones).
CHART_EVENTS = ("issue.created", "issue.updated", "issue.moved")
CHART_DAYS_MAX = 730  # a longer history is drawn from its last two years


@dataclass(frozen=True)
class BurnUpDay:
    day: date
    scope: int  # issues in the milestone at the end of the day
    done: int  # of which done


@dataclass
class CategoryGroup:
    category: StatusCategory
    issues: list[Issue] = field(default_factory=list)
    count: int = 0

    @property
    def more(self) -> int:
        return self.count - len(self.issues)


@dataclass(frozen=True)
class MilestonePage:
    summary: MilestoneSummary
    groups: list[CategoryGroup]
    burn_up: list[BurnUpDay]

    @property
    def milestone(self) -> Milestone:
        return self.summary.milestone


async def milestone_page(
    session: AsyncSession,
    viewer: User | None,
    project_id: int,
    milestone_id: int,
    *,
    today: date | None = None,
) -> MilestonePage:
    """What the milestone's page shows. NotFound unless `viewer` may read the project."""
    milestone = await get_milestone(session, viewer, project_id, milestone_id)
    found, groups = await _groups(session, milestone, today or utcnow().date())
    chart = await burn_up(session, found, today=today)
    return MilestonePage(found, groups, chart)


async def _groups(
    session: AsyncSession, milestone: Milestone, today: date
) -> tuple[MilestoneSummary, list[CategoryGroup]]:
    """The counts and the first issues of each category, from one narrow read of the
    milestone's issues (the issue index led by project_id, milestone_id) and one of the rows
    shown."""
    groups = {category: CategoryGroup(category) for category in StatusCategory}
    members = await session.execute(
        select(Issue.id, WorkflowStatus.category, Issue.estimate)
        .join(WorkflowStatus, WorkflowStatus.id == Issue.status_id)
        .where(Issue.project_id == milestone.project_id, Issue.milestone_id == milestone.id)
        .order_by(Issue.position, Issue.id)
    )
    shown: list[tuple[CategoryGroup, int]] = []
    points = points_done = 0
    for issue_id, category, estimate in members:
        group = groups[StatusCategory(category)]
        group.count += 1
        points += estimate or 0
        if group.category is StatusCategory.DONE:
            points_done += estimate or 0
        if group.count <= SHOWN_PER_CATEGORY:
            shown.append((group, issue_id))
    if shown:
        loaded = await session.scalars(
            select(Issue).where(Issue.id.in_([i for _, i in shown])).options(*ROW_DETAILS)
        )
        by_id = {issue.id: issue for issue in loaded}
        for group, issue_id in shown:
            group.issues.append(by_id[issue_id])
    total = sum(group.count for group in groups.values())
    done = groups[StatusCategory.DONE].count
    found = MilestoneSummary(
        milestone, total, done, points, points_done, overdue=milestone.is_overdue(today)
    )
    return found, list(groups.values())


def _day(session: AsyncSession) -> object:
    """An event's UTC day, as the database writes it."""
    if session.bind.dialect.name == "postgresql":
        return func.date(func.timezone("UTC", Activity.created_at))
    return func.date(Activity.created_at)


async def burn_up(
    session: AsyncSession, found: MilestoneSummary, *, today: date | None = None
) -> list[BurnUpDay]:
    """Per day, from the milestone's creation to today (or its closing): how many of its issues
    it held, and how many of those were done, as the activity log tells it.

    One query over the events of the milestone's current issues (found by the issue index on
    project and milestone, their events by the activity index on issue and seq): each event's
    "milestone" and "done" say how it changed the issue's membership and done state; running
    sums per issue give its state after each event, and the change of (member, member and done)
    from the previous event, summed per day, is the day's step. Issues that left the milestone
    are not counted (the chart shows its present issues' history); issues whose history does
    not say when they joined (written before the log said so) count from its first day."""
    milestone = found.milestone
    mid = milestone.id
    joined = Activity.payload[("milestone", 1)].as_integer()
    left = Activity.payload[("milestone", 0)].as_integer()
    done = Activity.payload["done"].as_boolean()
    members = select(Issue.id).where(
        Issue.project_id == milestone.project_id, Issue.milestone_id == mid
    )
    steps = (
        select(
            Activity.issue_id.label("issue_id"),
            Activity.seq.label("seq"),
            _day(session).label("day"),
            (case((joined == mid, 1), else_=0) - case((left == mid, 1), else_=0)).label("d_in"),
            case((done.is_(None), 0), (done, 1), else_=-1).label("d_done"),
        )
        .where(
            Activity.issue_id.in_(members),
            Activity.kind.in_(CHART_EVENTS),
            # Only the events that say something of membership or done-ness: fewer rows to sort.
            or_(joined.is_not(None), left.is_not(None), done.is_not(None)),
        )
        .subquery()
    )
    window = {"partition_by": steps.c.issue_id, "order_by": steps.c.seq}
    member = func.sum(steps.c.d_in).over(**window)
    is_done = func.sum(steps.c.d_done).over(**window)
    states = select(
        steps.c.issue_id,
        steps.c.seq,
        steps.c.day,
        member.label("member"),
        (member * is_done).label("member_done"),
    ).subquery()
    previous = {"partition_by": states.c.issue_id, "order_by": states.c.seq}
    scope_step = states.c.member - func.coalesce(func.lag(states.c.member).over(**previous), 0)
    done_step = states.c.member_done - func.coalesce(
        func.lag(states.c.member_done).over(**previous), 0
    )
    deltas = select(
        states.c.day, scope_step.label("scope_step"), done_step.label("done_step")
    ).subquery()
    rows = await session.execute(
        select(
            deltas.c.day,
            cast(func.sum(deltas.c.scope_step), Integer),
            cast(func.sum(deltas.c.done_step), Integer),
        )
        .group_by(deltas.c.day)
        .order_by(deltas.c.day)
    )
    by_day: dict[date, tuple[int, int]] = {}
    for day, scope_change, done_change in rows:
        day = date.fromisoformat(day) if isinstance(day, str) else day
        by_day[day] = (int(scope_change or 0), int(done_change or 0))
    return _days(found, by_day, today)


def _days(
    found: MilestoneSummary, by_day: dict[date, tuple[int, int]], today: date | None
) -> list[BurnUpDay]:
    milestone = found.milestone
    first = milestone.created_at.date()
    if by_day:
        first = min(first, min(by_day))
    last = milestone.closed_at.date() if milestone.closed_at else (today or date.today())
    last = max(last, max(by_day, default=last), first)
    first = max(first, last - timedelta(days=CHART_DAYS_MAX))
    # What the log does not explain (issues planned before it said so) counts from the start.
    scope_total = sum(change for change, _ in by_day.values())
    done_total = sum(change for _, change in by_day.values())
    scope, done = found.total - scope_total, found.done - done_total
    for day in [d for d in by_day if d < first]:
        scope, done = scope + by_day[day][0], done + by_day[day][1]
    days = []
    current = first
    while current <= last:
        scope_change, done_change = by_day.get(current, (0, 0))
        scope, done = scope + scope_change, done + done_change
        days.append(BurnUpDay(current, max(scope, 0), max(done, 0)))
        current += timedelta(days=1)
    return days
