"""Writing a checked export into a project, in the caller's transaction (all or nothing).

The project's row is locked from the start (on SQLite the whole database is): an import needs
its issues' numbers before it writes them, to turn `#12` into `WEB-3` in the texts, so unlike a
single create it takes the numbers up front rather than at commit (decision 0015's exception,
decision 0029). The counters move by exactly what was written, so the sequence stays gap-free.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import after_commit, utcnow
from app.models import (
    Activity,
    Comment,
    Issue,
    IssueLabel,
    IssueSearch,
    Project,
    StatusCategory,
    User,
)
from app.models.issue import POSITION_STEP
from app.services.activity import NOTIFY_CHANNEL
from app.services.importing.parts import labels_for, milestones_for, workflow_for
from app.services.importing.people import resolve_people
from app.services.importing.records import ImportData, ImportRefused
from app.services.search.documents import DOCUMENT_MAX_BYTES
from app.services.text import DESCRIPTION_MAX, storable

BATCH = 500  # issues per round of inserts, and per progress report
COMMENT_MAX = 20_000
Progress = Callable[[int], Awaitable[None]]

# "#12", but not "&#12;", "a#12" or "issues/#12"; GitHub's own reference shape.
_REFERENCE = re.compile(r"(?<![\w&/#])#([0-9]{1,9})\b")


def _rewrite(body: str, keys: dict[int, str]) -> str:
    """GitHub's #12 references as the imported issues' keys; others stay as they were."""
    return _REFERENCE.sub(lambda m: keys.get(int(m.group(1)), m.group(0)), body)


async def _last_positions(session: AsyncSession, project_id: int) -> dict[int, int]:
    rows = await session.execute(
        select(Issue.status_id, func.max(Issue.position))
        .where(Issue.project_id == project_id)
        .group_by(Issue.status_id)
    )
    return {status_id: position or 0 for status_id, position in rows}


async def write_import(
    session: AsyncSession,
    actor: User | None,
    project_id: int,
    data: ImportData,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Write `data` into the project in the caller's transaction and say what was done (the
    job's summary). Does not commit; on any exception the caller rolls everything back."""
    project = await session.scalar(
        select(Project)
        .where(Project.id == project_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if project is None:
        raise ImportRefused("The project is gone.")
    if project.archived_at is not None:
        raise ImportRefused(f"{project.key} is archived; unarchive it to import into it.")
    workflow = await workflow_for(session, project, data)
    label_ids, labels_added = await labels_for(session, project, data)
    milestone_ids, milestones_added = await milestones_for(session, project, data)
    people = [
        person
        for issue in data.issues
        for person in (issue.reporter, issue.assignee, *(c.author for c in issue.comments))
        if person is not None
    ]
    before = set(await session.scalars(select(User.id).where(User.is_placeholder)))
    user_ids = await resolve_people(session, people)
    placeholders = sorted(
        {
            email
            for email in await session.scalars(
                select(User.email).where(
                    User.id.in_(set(user_ids.values()) - before), User.is_placeholder
                )
            )
        }
    )

    def person_id(person: Any) -> int | None:
        return user_ids.get(person.identity) if person is not None and person.identity else None

    first_number = project.last_issue_number + 1
    numbers = [first_number + place for place in range(len(data.issues))]
    keys = {
        issue.external_number: f"{project.key}-{number}"
        for issue, number in zip(data.issues, numbers, strict=True)
        if issue.external_number is not None
    }
    positions = await _last_positions(session, project.id)
    next_seq = project.last_event_seq
    now = utcnow()
    dialect = session.get_bind().dialect.name
    shortened: list[str] = []
    skipped = [{"where": s.where, "reason": s.reason} for s in data.skipped]
    comment_count = 0
    seq_rows: list[dict[str, Any]] = []

    def event(kind: str, at: datetime, issue_id: int | None, payload: dict[str, Any]) -> None:
        nonlocal next_seq
        next_seq += 1
        seq_rows.append(
            {
                "project_id": project.id,
                "seq": next_seq,
                "actor_id": actor.id if actor else None,
                "issue_id": issue_id,
                "kind": kind,
                "payload": payload,
                "created_at": at,
            }
        )

    for name in workflow.added:
        event("project.workflow_changed", now, None, {"added": name, "imported": True})

    for start in range(0, len(data.issues), BATCH):
        batch = data.issues[start : start + BATCH]
        rows, statuses = [], []
        for place, issue in enumerate(batch, start):
            status = (
                workflow.named(issue.status_name)
                if issue.status_name is not None
                else workflow.first_of(issue.category)
            )
            assert status is not None
            statuses.append(status)
            positions[status.id] = positions.get(status.id, 0) + POSITION_STEP
            title = storable(issue.title).strip()
            if len(title) > 200:
                title = title[:199] + "…"
                shortened.append(f"{issue.where}: title")
            description = _rewrite(storable(issue.description), keys)
            if len(description) > DESCRIPTION_MAX:
                description = description[:DESCRIPTION_MAX]
                shortened.append(f"{issue.where}: description")
            created = issue.created_at or now
            rows.append(
                {
                    "project_id": project.id,
                    "number": numbers[place],
                    "title": title,
                    "description": description,
                    "status_id": status.id,
                    "priority": issue.priority or "none",
                    "type": issue.type or "task",
                    "reporter_id": person_id(issue.reporter) or (actor.id if actor else None),
                    "assignee_id": person_id(issue.assignee),
                    "position": positions[status.id],
                    "milestone_id": milestone_ids.get(issue.milestone[:100])
                    if issue.milestone
                    else None,
                    "external_key": issue.external_key[:64].upper(),
                    "version": 1,
                    "created_at": created,
                    "updated_at": max(issue.updated_at or created, created),
                }
            )
        issue_ids = list(
            await session.scalars(
                insert(Issue.__table__).returning(
                    Issue.__table__.c.id, sort_by_parameter_order=True
                ),
                rows,
            )
        )
        label_rows, comment_rows, search_rows = [], [], []
        for issue, issue_id, status, row in zip(batch, issue_ids, statuses, rows, strict=True):
            for name in dict.fromkeys(n.lower() for n in issue.labels):
                label_rows.append({"issue_id": issue_id, "label_id": label_ids[name]})
            # PostgreSQL's parser reads "ABC-123" as abc and -123: the words apart find it too.
            key = row["external_key"]
            texts = [row["title"], row["description"], key, key.replace("-", " ")]
            for comment in issue.comments:
                body = _rewrite(storable(comment.body), keys).strip()
                if not body:
                    skipped.append({"where": issue.where, "reason": "an empty comment"})
                    continue
                comment_rows.append(
                    {
                        "issue_id": issue_id,
                        "author_id": person_id(comment.author),
                        "body": body[:COMMENT_MAX],
                        "created_at": comment.created_at,
                    }
                )
                texts.append(body)
            search_rows.append({"issue_id": issue_id, "text": " ".join(texts)})
            done = status.category == StatusCategory.DONE.value
            closed_later = done and issue.closed_at is not None
            milestone_id = row["milestone_id"]
            event(
                "issue.created",
                row["created_at"],
                issue_id,
                {
                    "title": row["title"],
                    "status": status.name,
                    "number": row["number"],
                    "imported": issue.external_key,
                    **({"milestone": [None, milestone_id]} if milestone_id else {}),
                    **({"done": True} if done and not closed_later else {}),
                },
            )
            if closed_later:
                event(
                    "issue.updated",
                    issue.closed_at,
                    issue_id,
                    {
                        "changes": {"status": ["", status.name]},
                        "done": True,
                        "version": 1,
                        "number": row["number"],
                    },
                )
        if label_rows:
            await session.execute(insert(IssueLabel), label_rows)
        if comment_rows:
            await session.execute(insert(Comment.__table__), comment_rows)
            comment_count += len(comment_rows)
        await _write_search_documents(session, dialect, search_rows)
        if seq_rows:
            await session.execute(insert(Activity.__table__), seq_rows)
            seq_rows.clear()
        if progress is not None:
            await progress(start + len(batch))

    summary: dict[str, Any] = {
        "imported": len(data.issues),
        "comments": comment_count,
        "first_key": f"{project.key}-{numbers[0]}" if numbers else None,
        "last_key": f"{project.key}-{numbers[-1]}" if numbers else None,
        "skipped": skipped,
        "statuses_added": workflow.added,
        "labels_added": labels_added,
        "milestones_added": milestones_added,
        "placeholders": placeholders,
        "unknown_values": data.unknown_values,
        "shortened": shortened,
    }
    event(
        "project.imported",
        now,
        None,
        {
            "source": data.kind,
            "imported": len(data.issues),
            "skipped": len(skipped),
            "first_key": summary["first_key"],
            "last_key": summary["last_key"],
        },
    )
    await session.execute(insert(Activity.__table__), seq_rows)
    await session.execute(
        update(Project)
        .where(Project.id == project.id)
        .values(
            last_issue_number=project.last_issue_number + len(data.issues), last_event_seq=next_seq
        )
        .execution_options(synchronize_session=False)
    )
    # The live layer hears of the new rows once this commits, as after take_numbers.
    after_commit.note_activity(session, project.id)
    if dialect == "postgresql":
        await session.execute(
            text("SELECT pg_notify(:channel, :payload)"),
            {"channel": NOTIFY_CHANNEL, "payload": f"{project.id}:{next_seq}"},
        )
    return summary


_POSTGRESQL_DOCUMENT = text(
    "INSERT INTO issue_search (issue_id, document) "
    "VALUES (:issue_id, to_tsvector('english'::regconfig, :text))"
)


async def _write_search_documents(
    session: AsyncSession, dialect: str, rows: list[dict[str, Any]]
) -> None:
    """The issues' search documents, as refresh_search_document makes them, in one statement
    per batch; the old key is part of the words, so a plain search for ABC-123 finds it."""
    if not rows:
        return
    for row in rows:
        row["text"] = row["text"].encode()[:DOCUMENT_MAX_BYTES].decode(errors="ignore")
    if dialect == "postgresql":
        await session.execute(_POSTGRESQL_DOCUMENT, rows)
    else:
        await session.execute(
            insert(IssueSearch.__table__),
            [{"issue_id": row["issue_id"], "document": row["text"]} for row in rows],
        )
