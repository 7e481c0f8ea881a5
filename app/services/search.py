"""Finding issues: the search language, full-text documents, pages, CSV and saved searches."""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import re
import unicodedata
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
    literal_column,
    not_,
    or_,
    select,
    table,
    true,
    tuple_,
)
from sqlalchemy import text as sql_text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload

from app.errors import Invalid, NotFound
from app.models import (
    Comment,
    Issue,
    IssueLabel,
    IssueSearch,
    Label,
    Membership,
    Project,
    SavedSearch,
    StatusCategory,
    User,
    WorkflowStatus,
)
from app.models.issue import IssueType, Priority
from app.services.access import require_validated
from app.services.transaction import use_case

QUERY_MAX_LENGTH = 500  # the length of SavedSearch.query
QUERY_MAX_TERMS = 20
QUERY_MAX_WORDS = 32  # free words, counted after splitting at punctuation
# Shorter words match exactly: a one- or two-letter prefix would match most of the index.
PREFIX_MIN_LENGTH = 3
PAGE_MAX = 500  # also the page size of the CSV export
SAVED_SEARCH_NAME_MAX = 80
SAVED_SEARCHES_MAX = 50
# PostgreSQL refuses a tsvector whose lexemes pass 1 MB; the input is cut well below that.
DOCUMENT_MAX_BYTES = 500_000

SORTS = (
    "updated-desc",
    "updated-asc",
    "created-desc",
    "created-asc",
    "priority-desc",
    "priority-asc",
    "number-asc",
    "number-desc",
)
DEFAULT_SORT = "updated-desc"
DATE_QUALIFIERS = ("created", "updated")
QUALIFIERS = (
    "assignee",
    "created",
    "is",
    "label",
    "priority",
    "project",
    "reporter",
    "sort",
    "status",
    "type",
    "updated",
)
PRIORITIES = tuple(priority.value for priority in Priority)
ISSUE_TYPES = tuple(kind.value for kind in IssueType)
PRIORITY_RANK = {"urgent": 4, "high": 3, "medium": 2, "low": 1, "none": 0}

_QUALIFIER_NAME = re.compile(r"([A-Za-z][A-Za-z_]*):")
_DATE_VALUE = re.compile(r"(>=|<=|>|<)?(.*)", re.DOTALL)
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# Letters and digits: what both full-text tokenizers keep (everything else separates words).
_WORD = re.compile(r"[^\W_]+")
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
)


class QueryError(Invalid):
    """A search that does not parse; `position` is the 0-based offset of the fault."""

    def __init__(self, message: str, *, position: int) -> None:
        super().__init__(message, field="q", position=position)
        self.position = position


# --- The query language -----------------------------------------------------------------------


@dataclass(frozen=True)
class Qualifier:
    """One `name:value` filter. Dates carry their comparison (`>`, `>=`, `<`, `<=`, or "" for
    that whole day) and their value as YYYY-MM-DD."""

    name: str
    value: str
    negated: bool = False
    comparison: str = ""


@dataclass(frozen=True)
class Words:
    """Free words, split at punctuation (each must match; from three letters on, as a prefix),
    or a quoted phrase (its words in that order)."""

    tokens: tuple[str, ...]
    phrase: bool = False
    negated: bool = False


@dataclass(frozen=True)
class Query:
    text: str = ""
    qualifiers: tuple[Qualifier, ...] = ()
    words: tuple[Words, ...] = ()
    sort: str = DEFAULT_SORT


def parse_query(text: str) -> Query:
    """Parse the search box. Raises QueryError saying where and why."""
    if len(text) > QUERY_MAX_LENGTH:
        raise QueryError(
            f"A search is at most {QUERY_MAX_LENGTH} characters; this one has {len(text)}.",
            position=QUERY_MAX_LENGTH,
        )
    for position, character in enumerate(text):
        if not character.isspace() and unicodedata.category(character) in ("Cc", "Cs"):
            raise QueryError(
                f"Unexpected control character at column {position + 1}", position=position
            )
    parser = _Parser(text)
    return parser.parse()


def _column(position: int) -> str:
    return f"column {position + 1}"


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.at = 0
        self.qualifiers: list[Qualifier] = []
        self.words: list[Words] = []
        self.sort: str | None = None
        self.terms = 0
        self.tokens = 0

    def parse(self) -> Query:
        while True:
            while self.at < len(self.text) and self.text[self.at].isspace():
                self.at += 1
            if self.at >= len(self.text):
                break
            self.term()
        return Query(
            text=self.text,
            qualifiers=tuple(self.qualifiers),
            words=tuple(self.words),
            sort=self.sort or DEFAULT_SORT,
        )

    def term(self) -> None:
        start = self.at
        self.terms += 1
        if self.terms > QUERY_MAX_TERMS:
            raise QueryError(
                f"Too many terms at {_column(start)}; a search has at most {QUERY_MAX_TERMS}",
                position=start,
            )
        negated = self._peek("-") and self.at + 1 < len(self.text)
        negated = negated and not self.text[self.at + 1].isspace()
        if negated:
            self.at += 1
        if self._peek('"'):
            self._add_words(start, self.quoted(), phrase=True, negated=negated)
            return
        name = _QUALIFIER_NAME.match(self.text, self.at)
        if name is not None and not self.text.startswith("//", name.end()):
            self.qualifier(name.group(1).lower(), name.start(), name.end(), negated)
            return
        self._add_words(start, self.bare(), phrase=False, negated=negated)

    def quoted(self) -> str:
        opening = self.at
        closing = self.text.find('"', opening + 1)
        if closing < 0:
            raise QueryError(
                f'Unclosed quote at {_column(opening)}: close it with another "',
                position=opening,
            )
        self.at = closing + 1
        return self.text[opening + 1 : closing]

    def bare(self) -> str:
        start = self.at
        while self.at < len(self.text) and not self.text[self.at].isspace():
            self.at += 1
        return self.text[start : self.at]

    def _peek(self, character: str) -> bool:
        return self.text.startswith(character, self.at)

    def _add_words(self, start: int, text: str, *, phrase: bool, negated: bool) -> None:
        tokens = tuple(_WORD.findall(text.lower()))
        self.tokens += len(tokens)
        if self.tokens > QUERY_MAX_WORDS:
            raise QueryError(
                f"Too many words at {_column(start)}; a search has at most {QUERY_MAX_WORDS}",
                position=start,
            )
        if tokens:
            self.words.append(Words(tokens, phrase=phrase and len(tokens) > 1, negated=negated))

    def qualifier(self, name: str, start: int, value_start: int, negated: bool) -> None:
        if name not in QUALIFIERS:
            raise QueryError(
                f'Unknown qualifier "{name}:" at {_column(start)}; known: '
                f"{', '.join(QUALIFIERS)} (put words with a colon in quotes)",
                position=start,
            )
        self.at = value_start
        quoted = self._peek('"')
        raw = self.quoted() if quoted else self.bare()
        value = raw.strip()
        # Where the value itself starts, for pointing at it in an error.
        value_start += quoted + len(raw) - len(raw.lstrip())
        if not value:
            raise QueryError(
                f'"{name}:" needs a value at {_column(value_start)}', position=value_start
            )
        if name == "sort":
            self._sort(value, start, value_start, negated)
        elif name in DATE_QUALIFIERS:
            comparison, day = _parse_date(value, value_start)
            self.qualifiers.append(Qualifier(name, day, negated, comparison))
        else:
            self.qualifiers.append(Qualifier(name, _normalise(name, value, value_start), negated))

    def _sort(self, value: str, start: int, value_start: int, negated: bool) -> None:
        if negated:
            raise QueryError(f'"sort:" cannot be negated at {_column(start)}', position=start)
        if self.sort is not None:
            raise QueryError(f'A second "sort:" at {_column(start)}; use one', position=start)
        if value.lower() not in SORTS:
            raise QueryError(
                f'Unknown sort "{value}" at {_column(value_start)}; use one of {", ".join(SORTS)}',
                position=value_start,
            )
        self.sort = value.lower()


def _normalise(name: str, value: str, position: int) -> str:
    allowed = {"is": ("open", "closed"), "priority": PRIORITIES, "type": ISSUE_TYPES}.get(name)
    if allowed is not None:
        if value.lower() not in allowed:
            raise QueryError(
                f'Unknown value "{value}" for "{name}:" at {_column(position)}; '
                f"use one of {', '.join(allowed)}",
                position=position,
            )
        return value.lower()
    if name in ("assignee", "reporter"):
        return value.lower().removeprefix("@")
    if name == "project":
        return value.upper()
    return value  # status and label names match whatever their case


def _parse_date(value: str, position: int) -> tuple[str, str]:
    match = _DATE_VALUE.fullmatch(value)
    assert match is not None  # the pattern matches any text
    comparison, day = match.group(1) or "", match.group(2)
    try:
        if not _ISO_DATE.fullmatch(day):
            raise ValueError(day)
        date.fromisoformat(day)
    except ValueError:
        raise QueryError(
            f'"{day}" is not a date (use YYYY-MM-DD) at {_column(position + len(comparison))}',
            position=position + len(comparison),
        ) from None
    return comparison, day


# --- Search documents -------------------------------------------------------------------------


async def refresh_search_document(session: AsyncSession, issue_id: int) -> None:
    """(Re)write the issue's search document from its title, description and live comments.

    Runs inside the caller's transaction and does not commit. On SQLite the FTS5 index follows
    through the triggers on issue_search.
    """
    row = (
        await session.execute(select(Issue.title, Issue.description).where(Issue.id == issue_id))
    ).one_or_none()
    if row is None:
        return
    bodies = await session.scalars(
        select(Comment.body)
        .where(Comment.issue_id == issue_id, Comment.deleted_at.is_(None))
        .order_by(Comment.id)
    )
    text = " ".join([row.title, row.description, *bodies])
    if _dialect(session) == "postgresql":
        text = text.encode()[:DOCUMENT_MAX_BYTES].decode(errors="ignore")
        document: Any = func.to_tsvector(_ENGLISH, text)
        insert: Any = postgresql_insert
    else:
        document, insert = text, sqlite_insert
    statement = insert(IssueSearch).values(issue_id=issue_id, document=document)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[IssueSearch.issue_id], set_={"document": statement.excluded.document}
        )
    )


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


# A constant, not a bound parameter, so that the planner sees an immutable function call.
_ENGLISH = literal_column("'english'::regconfig")


# --- Searching --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchPage:
    issues: list[Issue]
    next_cursor: str | None
    query: Query


_PRIORITY_RANK_SQL = case(PRIORITY_RANK, value=Issue.priority, else_=0)
_SORT_KEYS: dict[str, ColumnElement[Any]] = {
    "updated": Issue.updated_at,
    "created": Issue.created_at,
    "priority": _PRIORITY_RANK_SQL,
    "number": Issue.number,
}


def _sort_value(sort: str, issue: Issue) -> datetime | int:
    field = sort.split("-")[0]
    if field == "priority":
        return PRIORITY_RANK.get(issue.priority, 0)
    return getattr(issue, {"updated": "updated_at", "created": "created_at"}.get(field, field))


async def search_issues(
    session: AsyncSession,
    viewer: User | None,
    query: Query | str,
    *,
    project: Project | None = None,
    after: str | None = None,
    limit: int = 50,
) -> SearchPage:
    """One page of the issues `viewer` may read that match `query`, in its sort order, and the
    cursor of the next page (None on the last). Anonymous viewers see nothing. Raises
    QueryError for a query that does not parse, Invalid(field="after") for a bad cursor."""
    parsed = query if isinstance(query, Query) else parse_query(query)
    limit = max(1, min(limit, PAGE_MAX))
    mark = _decode_cursor(after, parsed.sort) if after else None
    if viewer is None:
        return SearchPage([], None, parsed)
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
    issues = list(await session.scalars(statement.options(*ISSUE_DETAILS)))
    next_cursor = None
    if len(issues) > limit:
        issues = issues[:limit]
        last = issues[-1]
        next_cursor = _encode_cursor(parsed.sort, _sort_value(parsed.sort, last), last.id)
    return SearchPage(issues, next_cursor, parsed)


async def count_issues(
    session: AsyncSession,
    viewer: User | None,
    query: Query | str,
    *,
    project: Project | None = None,
) -> int:
    """How many issues `viewer` may read match `query` (0 for anonymous viewers)."""
    parsed = query if isinstance(query, Query) else parse_query(query)
    if viewer is None:
        return 0
    await _plan_for_these_values(session)
    statement = select(func.count()).select_from(Issue)
    return await session.scalar(statement.where(*_conditions(session, viewer, parsed, project)))


async def _plan_for_these_values(session: AsyncSession) -> None:
    """Have PostgreSQL plan each search for its own words. asyncpg prepares statements, and after
    five runs PostgreSQL may settle on a generic plan that guesses how many issues any words
    match: right for rare words, several times slower for common ones. Lasts until the
    transaction ends."""
    if _dialect(session) == "postgresql":
        await session.execute(sql_text("SET LOCAL plan_cache_mode = force_custom_plan"))


def _conditions(
    session: AsyncSession, viewer: User, query: Query, project: Project | None
) -> list[ColumnElement[bool]]:
    """The WHERE clause: what the viewer may read, then each term of the query."""
    member_of = select(Membership.project_id).where(Membership.user_id == viewer.id)
    readable = select(Project.id).where(or_(Project.is_public.is_(True), Project.id.in_(member_of)))
    conditions = [Issue.project_id.in_(readable)]
    if project is not None:
        conditions.append(Issue.project_id == project.id)
    for qualifier in query.qualifiers:
        condition = _qualifier_condition(qualifier, viewer)
        conditions.append(not_(condition) if qualifier.negated else condition)
    conditions.extend(_text_conditions(_dialect(session), query.words))
    return conditions


def _qualifier_condition(qualifier: Qualifier, viewer: User) -> ColumnElement[bool]:
    """The condition a qualifier asks for, written so that NOT of it is right for NULLs too."""
    name, value = qualifier.name, qualifier.value
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
            return and_(column.is_not(None), column == viewer.id)
        people = select(User.id).where(or_(User.handle == value, User.email == value))
        return and_(column.is_not(None), column.in_(people))
    if name == "label":
        labelled = (
            select(IssueLabel.c.issue_id)
            .join(Label, Label.id == IssueLabel.c.label_id)
            .where(Label.name.ilike(_exactly(value), escape="\\"))
        )
        return Issue.id.in_(labelled)
    if name == "priority":
        return Issue.priority == value
    if name == "type":
        return Issue.type == value
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


def _encode_cursor(sort: str, value: datetime | int, issue_id: int) -> str:
    """An opaque, URL-safe mark of the last row shown: its sort value and its id."""
    shown = value.isoformat() if isinstance(value, datetime) else value
    raw = json.dumps([sort, shown, issue_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str, sort: str) -> tuple[datetime | int, int]:
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
            value: datetime | int = datetime.fromisoformat(shown)
            if value.tzinfo is None:
                raise ValueError(cursor)
            value = value.astimezone(UTC)
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


# --- CSV export -------------------------------------------------------------------------------

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


# --- Saved searches ---------------------------------------------------------------------------


@use_case
async def save_search(session: AsyncSession, user: User, *, name: str, query: str) -> SavedSearch:
    """Keep a search under a name for the sidebar. Raises Invalid (name, or QueryError for the
    query) or Forbidden for an unconfirmed account; commits once."""
    require_validated(user)
    name, query = name.strip(), query.strip()
    if not 1 <= len(name) <= SAVED_SEARCH_NAME_MAX:
        raise Invalid(
            f"A saved search's name is 1 to {SAVED_SEARCH_NAME_MAX} characters.", field="name"
        )
    if not query:
        raise Invalid("Type a search to save.", field="q")
    parse_query(query)
    mine = select(SavedSearch.name).where(SavedSearch.user_id == user.id)
    names = {existing.lower() for existing in await session.scalars(mine)}
    if name.lower() in names:
        raise Invalid(f'You already have a search called "{name}".', field="name")
    if len(names) >= SAVED_SEARCHES_MAX:
        raise Invalid(
            f"You can keep {SAVED_SEARCHES_MAX} searches; delete one first.", field="name"
        )
    saved = SavedSearch(user_id=user.id, name=name, query=query)
    session.add(saved)
    await session.commit()
    return saved


async def list_saved_searches(session: AsyncSession, user: User) -> list[SavedSearch]:
    """The user's saved searches, by name."""
    return list(
        await session.scalars(
            select(SavedSearch)
            .where(SavedSearch.user_id == user.id)
            .order_by(func.lower(SavedSearch.name), SavedSearch.id)
        )
    )


@use_case
async def delete_saved_search(session: AsyncSession, user: User, saved_search_id: int) -> None:
    """Delete one of the user's saved searches; another user's is NotFound. Commits once."""
    saved = None
    if saved_search_id in _INT32:
        saved = await session.get(SavedSearch, saved_search_id)
    if saved is None or saved.user_id != user.id:
        raise NotFound("No such saved search.")
    await session.delete(saved)
    await session.commit()
