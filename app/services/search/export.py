"""The CSV export: every issue a search finds, one row each, safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Issue, Project, User
from app.services.search.finder import PAGE_MAX, search_issues
from app.services.search.query_language import Query, parse_query

EXPORT_COLUMNS = (
    "key",
    "title",
    "status",
    "priority",
    "type",
    "assignee",
    "reporter",
    "labels",
    "created",
    "updated",
    "due",
)
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


async def export_csv(
    session: AsyncSession,
    viewer: User | None,
    query: Query | str,
    *,
    project: Project | None = None,
) -> str:
    """Every issue the search finds, as CSV text with a header row, walked page by page."""
    parsed = query if isinstance(query, Query) else parse_query(query)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_COLUMNS)
    after = None
    while True:
        page = await search_issues(
            session, viewer, parsed, project=project, after=after, limit=PAGE_MAX
        )
        writer.writerows([_safe_cell(cell) for cell in _csv_row(issue)] for issue in page.issues)
        if page.next_cursor is None:
            return buffer.getvalue()
        after = page.next_cursor


def _csv_row(issue: Issue) -> list[str]:
    return [
        issue.key,
        issue.title,
        issue.status.name,
        issue.priority,
        issue.type,
        issue.assignee.handle if issue.assignee else "",
        issue.reporter.handle if issue.reporter else "",
        ", ".join(sorted(label.name for label in issue.labels)),
        _csv_time(issue.created_at),
        _csv_time(issue.updated_at),
        issue.due_date.isoformat() if issue.due_date else "",
    ]


def _csv_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _safe_cell(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_STARTS) else value
