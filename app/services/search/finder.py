"""Finding issues: what a viewer may read, each term as SQL, full-text matching, pages."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    Text,
    and_,
    case,
    column,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    table,
    true,
    tuple_,
)
from sqlalchemy import text as sql_text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer, joinedload, selectinload

from app.errors import Invalid
from app.models import (
    Issue,
    IssueLabel,
    IssueSearch,
    Label,
    Membership,
    Milestone,
    Priority,
    Project,
    StatusCategory,
    User,
    WorkflowStatus,
)
from app.services.relation_views import RELATION_QUALIFIERS, relation_condition
from app.services.search.documents import _ENGLISH, _dialect
from app.services.search.query_language import Qualifier, Query, Words, parse_query

# Shorter words match exactly: a one- or two-letter prefix would match most of the index.
PREFIX_MIN_LENGTH = 3
PAGE_MAX = 500  # also the page size of the CSV export
# Priority's order, as numbers to sort by: the least urgent is 0.
PRIORITY_RANK = {priority.value: rank for rank, priority in enumerate(reversed(Priority))}

_CURSOR = re.compile(r"[A-Za-z0-9_-]{1,200}")
_INT32 = range(-(2**31), 2**31)

# Everything a list of issues shows, loaded up front (relationships are lazy="raise"): the
# one-per-issue rows joined into the page's query, the labels in one more.
ISSUE_DETAILS = (
    joinedload(Issue.project, innerjoin=True),
    joinedload(Issue.status, innerjoin=True),
    joinedload(Issue.assignee),
    joinedload(Issue.reporter),
    selectinload(Issue.labels),
    joinedload(Issue.parent).load_only(Issue.number),  # its key (same project)
)
# What a page's rows of issues show (macros' issue_rows): no description, no reporter.
ROW_DETAILS = (
    joinedload(Issue.project, innerjoin=True),
    joinedload(Issue.status, innerjoin=True),
    joinedload(Issue.assignee),
    selectinload(Issue.labels),
    defer(Issue.description, raiseload=True),
)


@dataclass(frozen=True)
class SearchPage:
    issues: list[Issue]
    next_cursor: str | None
    query: Query


_PRIORITY_RANK_SQL = case(PRIORITY_RANK, value=Issue.priority, else_=0)
# An issue's milestone's due date; the last day there is for none, so that they sort last.
_MILESTONE_DUE_SQL = func.coalesce(
    select(Milestone.due_date).where(Milestone.id == Issue.milestone_id).scalar_subquery(),
    literal(date.max),
)
_SORT_KEYS: dict[str, ColumnElement[Any]] = {
    "updated": Issue.updated_at,
    "created": Issue.created_at,
    "priority": _PRIORITY_RANK_SQL,
    "number": Issue.number,
    "milestone": _MILESTONE_DUE_SQL,
}


async def _sort_value(session: AsyncSession, sort: str, issue: Issue) -> datetime | date | int:
    field = sort.split("-")[0]
    if field == "priority":
        return PRIORITY_RANK.get(issue.priority, 0)
    if field == "milestone":
        due = None
        if issue.milestone_id is not None:
            due = await session.scalar(
                select(Milestone.due_date).where(Milestone.id == issue.milestone_id)
            )
        return due or date.max
    return getattr(issue, {"updated": "updated_at", "created": "created_at"}.get(field, field))


async def search_issues(
    session: AsyncSession,
    viewer: User | None,
    query: Query | str,
    *,
    project: Project | None = None,
    after: str | None = None,
    limit: int = 50,
    rows_only: bool = False,
) -> SearchPage:
    """One page of the issues `viewer` may read that match `query`, in its sort order, and the
    cursor of the next page (None on the last); `rows_only` loads only what a page's rows show.
    Anonymous viewers see public projects. Raises
    QueryError for a query that does not parse, Invalid(field="after") for a bad cursor."""
    parsed = query if isinstance(query, Query) else parse_query(query)
    limit = max(1, min(limit, PAGE_MAX))
    mark = _decode_cursor(after, parsed.sort) if after else None
    field, direction = parsed.sort.split("-")
    key, descending = _SORT_KEYS[field], direction == "desc"
    await _plan_for_these_values(session)
    page_ids = select(Issue.id).where(*_conditions(session, viewer, parsed, project))
    if mark is not None:
        value, issue_id = mark
        row = tuple_(key, Issue.id)
        bound = tuple_(literal(value, key.type), literal(issue_id, Issue.id.type))
        page_ids = page_ids.where(row < bound if descending else row > bound)
    order = (key.desc(), Issue.id.desc()) if descending else (key.asc(), Issue.id.asc())
    # The page's ids first, then its rows: sorting narrow rows stays in memory where sorting
    # whole issues (descriptions and all) spills to disk once thousands match.
    page_ids = page_ids.order_by(*order).limit(limit + 1)
    statement = select(Issue).where(Issue.id.in_(page_ids)).order_by(*order)
    details = ROW_DETAILS if rows_only else ISSUE_DETAILS
    issues = list(await session.scalars(statement.options(*details)))
    next_cursor = None
    if len(issues) > limit:
        issues = issues[:limit]
        last = issues[-1]
        next_cursor = _encode_cursor(
            parsed.sort, await _sort_value(session, parsed.sort, last), last.id
        )
    return SearchPage(issues, next_cursor, parsed)


async def count_issues(
    session: AsyncSession,
    viewer: User | None,
    query: Query | str,
    *,
    project: Project | None = None,
    up_to: int | None = None,
) -> int:
    """How many issues `viewer` may read match `query`; with `up_to`, counting stops after
    `up_to + 1` (a page says "1,000+" rather than read every match of a common word)."""
    parsed = query if isinstance(query, Query) else parse_query(query)
    await _plan_for_these_values(session)
    conditions = _conditions(session, viewer, parsed, project)
    if up_to is None:
        return await session.scalar(select(func.count()).select_from(Issue).where(*conditions))
    matches = select(Issue.id).where(*conditions).limit(up_to + 1).subquery()
    return await session.scalar(select(func.count()).select_from(matches))


async def _plan_for_these_values(session: AsyncSession) -> None:
    """Have PostgreSQL plan each search for its own words. asyncpg prepares statements, and after
    five runs PostgreSQL may settle on a generic plan that guesses how many issues any words
    match: right for rare words, several times slower for common ones. Lasts until the
    transaction ends."""
    if _dialect(session) == "postgresql":
        await session.execute(sql_text("SET LOCAL plan_cache_mode = force_custom_plan"))


def _conditions(
    session: AsyncSession, viewer: User | None, query: Query, project: Project | None
) -> list[ColumnElement[bool]]:
    """The WHERE clause: what the viewer may read, then each term of the query."""
    readable = select(Project.id).where(Project.is_public.is_(True))
    if viewer is not None:
        member_of = select(Membership.project_id).where(Membership.user_id == viewer.id)
        readable = select(Project.id).where(
            or_(Project.is_public.is_(True), Project.id.in_(member_of))
        )
    conditions = [Issue.project_id.in_(readable)]
    if project is not None:
        conditions.append(Issue.project_id == project.id)
    for qualifier in query.qualifiers:
        condition = _qualifier_condition(qualifier, viewer)
        conditions.append(not_(condition) if qualifier.negated else condition)
    conditions.extend(_text_conditions(_dialect(session), query.words))
    return conditions


def _qualifier_condition(qualifier: Qualifier, viewer: User | None) -> ColumnElement[bool]:
    """The condition a qualifier asks for, written so that NOT of it is right for NULLs too."""
    name, value = qualifier.name, qualifier.value
    if (name, value) in RELATION_QUALIFIERS or name in ("parent", "blocks"):
        return relation_condition(name, value, viewer)
    if name == "is":
        done = WorkflowStatus.category == StatusCategory.DONE.value
        statuses = select(WorkflowStatus.id).where(done if value == "closed" else not_(done))
        return Issue.status_id.in_(statuses)
    if name == "status":
        named = WorkflowStatus.name.ilike(_exactly(value), escape="\\")
        return Issue.status_id.in_(select(WorkflowStatus.id).where(named))
    if name in ("assignee", "reporter"):
        column = Issue.assignee_id if name == "assignee" else Issue.reporter_id
        if value == "none":
            return column.is_(None)
        if value == "me":
            if viewer is None:  # nobody is "me" to an anonymous reader
                return and_(column.is_not(None), false())
            return and_(column.is_not(None), column == viewer.id)
        # By address only for someone logged in: to the anonymous API, an answer would say
        # which address has an account.
        named = (
            User.handle == value
            if viewer is None
            else or_(User.handle == value, User.email == value)
        )
        people = select(User.id).where(named)
        return and_(column.is_not(None), column.in_(people))
    if name == "label":
        labelled = (
            select(IssueLabel.c.issue_id)
            .join(Label, Label.id == IssueLabel.c.label_id)
            .where(Label.name.ilike(_exactly(value), escape="\\"))
        )
        return Issue.id.in_(labelled)
    if name == "no" or (name == "milestone" and value.lower() == "none"):
        return Issue.milestone_id.is_(None)
    if name == "milestone":
        named = Milestone.title.ilike(_exactly(value), escape="\\")
        planned = select(Milestone.id).where(named)
        return and_(Issue.milestone_id.is_not(None), Issue.milestone_id.in_(planned))
    if name == "priority":
        return Issue.priority == value
    if name == "type":
        return Issue.type == value
    if name == "imported":
        # Stored in capitals (the import writes them so): equality keeps to the index.
        return and_(Issue.external_key.is_not(None), Issue.external_key == value.upper())
    if name == "project":
        return Issue.project_id.in_(select(Project.id).where(Project.key == value))
    column = Issue.created_at if name == "created" else Issue.updated_at
    return _date_condition(column, qualifier.comparison, date.fromisoformat(value))


def _exactly(value: str) -> str:
    """A LIKE pattern for `value` itself. ILIKE rather than lower(name) = value because
    PostgreSQL estimates it from the column's statistics, and a good estimate of how many
    issues a label holds decides the plan."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _date_condition(column: Any, comparison: str, day: date) -> ColumnElement[bool]:
    """Days are UTC days: `>D` is from the start of the next day, `D` is the whole day."""
    start = datetime.combine(day, time(), UTC)
    end = start + timedelta(days=1) if day < date.max else None
    if comparison == ">=":
        return column >= start
    if comparison == "<":
        return column < start
    if end is None:  # the last day there is: nothing is after it
        return {">": false(), "<=": true()}.get(comparison, column >= start)
    if comparison == ">":
        return column >= end
    if comparison == "<=":
        return column < end
    return and_(column >= start, column < end)


def _text_conditions(dialect: str, words: Sequence[Words]) -> list[ColumnElement[bool]]:
    """Free words through the full-text index: all the positive terms must match, and none of
    the negated ones. The match expressions are built from letter-and-digit tokens only."""
    conditions = []
    wanted = [term for term in words if not term.negated]
    unwanted = [term for term in words if term.negated]
    if wanted:
        conditions.append(Issue.id.in_(_matching(dialect, wanted, every=True)))
    if unwanted:
        conditions.append(Issue.id.not_in(_matching(dialect, unwanted, every=False)))
    return conditions


_issue_fts = table("issue_fts", column("rowid", Integer), column("document", Text))


def _matching(dialect: str, terms: Sequence[Words], *, every: bool) -> Select[Any]:
    """The ids of issues whose document matches every term (or any, when every=False)."""
    if dialect == "postgresql":
        # to_tsquery syntax: 'word':* is a prefix, <-> a phrase's next word, & and | join.
        # Tokens hold no quotes or backslashes, but escape them all the same.
        parts = [
            " <-> ".join(_lexeme(token) for token in term.tokens)
            if term.phrase
            else " & ".join(_lexeme(token) + _prefix(token, ":*") for token in term.tokens)
            for term in terms
        ]
        expression = (" & " if every else " | ").join(f"({part})" for part in parts)
        matches = IssueSearch.document.op("@@")(func.to_tsquery(_ENGLISH, expression))
        return select(IssueSearch.issue_id).where(matches)
    # FTS5 syntax: "word"* is a prefix, "two words" a phrase; tokens hold no quotes, but escape.
    parts = [
        '"' + " ".join(term.tokens).replace('"', '""') + '"'
        if term.phrase
        else " AND ".join(
            '"' + token.replace('"', '""') + '"' + _prefix(token, "*") for token in term.tokens
        )
        for term in terms
    ]
    expression = (" AND " if every else " OR ").join(f"({part})" for part in parts)
    return select(_issue_fts.c.rowid).where(_issue_fts.c.document.match(expression))


def _lexeme(token: str) -> str:
    return "'" + token.replace("\\", "\\\\").replace("'", "''") + "'"


def _prefix(token: str, marker: str) -> str:
    return marker if len(token) >= PREFIX_MIN_LENGTH else ""


# --- Cursors ----------------------------------------------------------------------------------


def _encode_cursor(sort: str, value: datetime | date | int, issue_id: int) -> str:
    """An opaque, URL-safe mark of the last row shown: its sort value and its id."""
    shown = value.isoformat() if isinstance(value, date) else value
    raw = json.dumps([sort, shown, issue_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str, sort: str) -> tuple[datetime | date | int, int]:
    """The sort value and id a cursor marks. Checked field by field: a forged or garbled
    cursor, or one made for another sort order, is Invalid and never reaches the database
    with a value it cannot hold."""
    try:
        if not _CURSOR.fullmatch(cursor):
            raise ValueError(cursor)
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        cursor_sort, shown, issue_id = json.loads(raw)
        if cursor_sort != sort or type(issue_id) is not int or issue_id not in _INT32:
            raise ValueError(cursor)
        field = sort.split("-")[0]
        if field in ("updated", "created"):
            if type(shown) is not str:
                raise ValueError(cursor)
            value: datetime | date | int = datetime.fromisoformat(shown)
            if value.tzinfo is None:
                raise ValueError(cursor)
            value = value.astimezone(UTC)
        elif field == "milestone":
            if type(shown) is not str:
                raise ValueError(cursor)
            value = date.fromisoformat(shown)
        elif type(shown) is not int or shown not in _INT32:
            raise ValueError(cursor)
        else:
            value = shown
    except (ValueError, TypeError, OverflowError, binascii.Error, UnicodeDecodeError):
        raise Invalid(
            "This page link is broken or belongs to another search; start again from the first "
            "page.",
            field="after",
        ) from None
    return value, issue_id
