"""Writing the project's event log in the same transaction as the change it records.

Numbers are taken at commit (decision 0015). A writer adds its rows first, with the issue's
number and the event's `seq` still open; `use_case` calls `take_numbers` just before it commits,
which advances the project's counters (locking its row), writes the numbers into those rows and
queues their webhook deliveries. Writers to one project therefore hold the project's row only
for that last statement and the commit, and numbers are still handed out in commit order,
gap-free (decision 0003).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from app.db import NUMBERS_TO_TAKE, after_commit
from app.models import Activity, Issue, Project, User
from app.services.webhook_deliveries import enqueue_deliveries

NOTIFY_CHANNEL = "issues_activity"


@dataclass
class _ProjectNumbers:
    """What one transaction still has to number in one project, in the order it was written."""

    issues: list[Issue] = field(default_factory=list)
    events: list[_Event] = field(default_factory=list)


@dataclass
class _Event:
    activity: Activity
    project: Project
    actor: User | None
    issue: Issue | None


def _numbers_to_take(session: AsyncSession) -> dict[int, _ProjectNumbers]:
    return session.info.setdefault(NUMBERS_TO_TAKE, {})


def number_at_commit(session: AsyncSession, issue: Issue) -> None:
    """Give a new issue its project's next number when the transaction commits (until then
    `issue.number` is None, and an event about it gets the number into its payload too)."""
    _numbers_to_take(session).setdefault(issue.project_id, _ProjectNumbers()).issues.append(issue)


async def record_activity(
    session: AsyncSession,
    project: Project,
    actor: User | None,
    kind: str,
    *,
    issue: Issue | None = None,
    payload: dict[str, Any] | None = None,
) -> Activity:
    """Add the event-log row for a change; the caller commits it with the change (and its
    `seq` with it, see `take_numbers`)."""
    activity = Activity(
        project_id=project.id,
        seq=None,
        actor_id=actor.id if actor else None,
        issue_id=issue.id if issue else None,
        kind=kind,
        payload=payload or {},
    )
    session.add(activity)
    # Tell the live layer once this commits: PostgreSQL delivers a NOTIFY only at commit (and
    # drops it on rollback); SQLite's single process hears it from an after-commit hook.
    after_commit.note_activity(session, project.id)
    # Its webhook deliveries carry the seq: they are queued once it is taken (take_numbers).
    work = _numbers_to_take(session).setdefault(project.id, _ProjectNumbers())
    work.events.append(_Event(activity, project, actor, issue))
    return activity


async def take_numbers(session: AsyncSession) -> None:
    """Number what the transaction wrote: the last thing before its commit (`use_case` calls
    it). The rows are flushed first, so the project's row is locked only from here to the
    commit; projects in id order, so two transactions that touch several cannot deadlock.
    Webhook deliveries are queued after the numbers, with them: a project with active hooks
    holds its row for that too."""
    work_by_project: dict[int, _ProjectNumbers] = session.info.pop(NUMBERS_TO_TAKE, {})
    await session.flush()
    for project_id, work in list(work_by_project.items()):
        # Rows a rolled-back savepoint took away are numbered by nobody.
        work.issues = [issue for issue in work.issues if issue in session]
        work.events = [event for event in work.events if event.activity in session]
        if not work.issues and not work.events:
            del work_by_project[project_id]
    postgresql = session.bind.dialect.name == "postgresql"
    for project_id in sorted(work_by_project):
        work = work_by_project[project_id]
        if postgresql:
            issue_base, event_base, hooked = await _take_in_one_statement(session, project_id, work)
            _show_numbers(work, issue_base, event_base)
        else:
            issue_base, event_base = await _take_step_by_step(session, project_id, work)
            hooked = True  # looked up below (SQLite's writers queue on its lock anyway)
        if hooked:
            for event in work.events:
                await enqueue_deliveries(
                    session, event.activity, event.project, event.actor, event.issue
                )
        project = session.identity_map.get(identity_key(Project, project_id))
        if project is not None:  # the counters' UPDATE bypassed the ORM
            set_committed_value(project, "last_issue_number", issue_base + len(work.issues))
            set_committed_value(project, "last_event_seq", event_base + len(work.events))


def _issue_payload_numbers(work: _ProjectNumbers) -> list[int | None]:
    """For each event, the 1-based place of the new issue whose number its payload gets."""
    places = {issue.id: n for n, issue in enumerate(work.issues, 1)}
    return [places.get(event.activity.issue_id) for event in work.events]


# One round trip on PostgreSQL: the counters, both kinds of numbers, the event's NOTIFY.
_TAKE_NUMBERS = text(
    """
    WITH counters AS (
        UPDATE project
        SET last_issue_number = last_issue_number + :issue_count,
            last_event_seq = last_event_seq + :event_count
        WHERE id = :project_id
        RETURNING id, last_event_seq,
            last_issue_number - :issue_count AS issue_base,
            last_event_seq - :event_count AS event_base
    ), numbered AS (
        UPDATE issue SET number = counters.issue_base + taken.place
        FROM counters, unnest(CAST(:issue_ids AS bigint[])) WITH ORDINALITY AS taken(id, place)
        WHERE issue.id = taken.id
    ), sequenced AS (
        UPDATE activity
        SET seq = counters.event_base + taken.place,
            payload = CASE WHEN taken.issue_place IS NULL THEN activity.payload
                ELSE activity.payload
                    || jsonb_build_object('number', counters.issue_base + taken.issue_place)
            END
        FROM counters,
            unnest(CAST(:event_ids AS bigint[]), CAST(:issue_places AS bigint[]))
                WITH ORDINALITY AS taken(id, issue_place, place)
        WHERE activity.id = taken.id
    )
    SELECT issue_base, event_base,
        pg_notify(:channel, CAST(id AS text) || ':' || CAST(last_event_seq AS text)),
        EXISTS (SELECT 1 FROM webhook WHERE webhook.project_id = counters.id AND webhook.active)
            AS hooked
    FROM counters
    """
)


async def _take_in_one_statement(
    session: AsyncSession, project_id: int, work: _ProjectNumbers
) -> tuple[int, int, bool]:
    row = (
        await session.execute(
            _TAKE_NUMBERS,
            {
                "project_id": project_id,
                "issue_count": len(work.issues),
                "event_count": len(work.events),
                "issue_ids": [issue.id for issue in work.issues],
                "event_ids": [event.activity.id for event in work.events],
                "issue_places": _issue_payload_numbers(work),
                "channel": NOTIFY_CHANNEL,
            },
        )
    ).one()
    return row.issue_base, row.event_base, row.hooked


async def _take_step_by_step(
    session: AsyncSession, project_id: int, work: _ProjectNumbers
) -> tuple[int, int]:
    """The same on SQLite (no UPDATE in a WITH; its writers queue on the database lock): the
    counters first, then the numbers as `_show_numbers` put them on the objects."""
    counters = await session.execute(
        update(Project)
        .where(Project.id == project_id)
        .values(
            last_issue_number=Project.last_issue_number + len(work.issues),
            last_event_seq=Project.last_event_seq + len(work.events),
        )
        .returning(Project.last_issue_number, Project.last_event_seq)
        .execution_options(synchronize_session=False)
    )
    last_issue_number, last_event_seq = counters.one()
    issue_base, event_base = last_issue_number - len(work.issues), last_event_seq - len(work.events)
    _show_numbers(work, issue_base, event_base)
    if work.issues:
        await session.execute(
            update(Issue.__table__)
            .where(Issue.__table__.c.id == bindparam("issue_id"))
            .values(number=bindparam("new_number")),
            [{"issue_id": issue.id, "new_number": issue.number} for issue in work.issues],
        )
    await session.execute(
        update(Activity.__table__)
        .where(Activity.__table__.c.id == bindparam("event_id"))
        .values(seq=bindparam("new_seq"), payload=bindparam("new_payload")),
        [
            {
                "event_id": event.activity.id,
                "new_seq": event.activity.seq,
                "new_payload": event.activity.payload,
            }
            for event in work.events
        ],
    )
    return issue_base, event_base


def _payload_with_number(activity: Activity, issue_base: int, place: int | None) -> dict[str, Any]:
    payload = dict(activity.payload or {})
    if place is not None:
        payload["number"] = issue_base + place
    return payload


def _show_numbers(work: _ProjectNumbers, issue_base: int, event_base: int) -> None:
    """Put the taken numbers on the session's objects, as committed values (the rows have them,
    or get them from these: `_take_step_by_step`)."""
    places = _issue_payload_numbers(work)
    for n, issue in enumerate(work.issues, 1):
        set_committed_value(issue, "number", issue_base + n)
    for n, (event, place) in enumerate(zip(work.events, places, strict=True), 1):
        set_committed_value(event.activity, "seq", event_base + n)
        payload = _payload_with_number(event.activity, issue_base, place)
        set_committed_value(event.activity, "payload", payload)


async def activity_since(
    session: AsyncSession,
    project_id: int,
    after_seq: int,
    *,
    issue_id: int | None = None,
    limit: int = 500,
) -> list[Activity]:
    """The project's events after `after_seq`, oldest first (the replay a live client needs);
    with `issue_id`, that issue's only."""
    statement = select(Activity).where(Activity.project_id == project_id, Activity.seq > after_seq)
    if issue_id is not None:
        statement = statement.where(Activity.issue_id == issue_id)
    return list(await session.scalars(statement.order_by(Activity.seq).limit(limit)))
