"""Search documents: each issue's title, description and comments, kept ready for full text."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, literal, literal_column, select, union_all
from sqlalchemy import text as sql_text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Comment, Issue, IssueSearch

# PostgreSQL refuses a tsvector whose lexemes pass 1 MB; the input is cut well below that.
DOCUMENT_MAX_BYTES = 500_000


async def refresh_search_document(session: AsyncSession, issue_id: int) -> None:
    """(Re)write the issue's search document from its title, description and live comments.

    Runs inside the caller's transaction and does not commit. On SQLite the FTS5 index follows
    through the triggers on issue_search.
    """
    if _dialect(session) == "postgresql":
        written = await session.execute(
            _REFRESH_IN_POSTGRESQL, {"issue_id": issue_id, "max_bytes": DOCUMENT_MAX_BYTES}
        )
        if written.rowcount:
            return
        # No such issue, or a text past the limit: cut below, where a character is whole.
    # One round trip: the title, the description, then the live comments in order.
    parts = union_all(
        select(Issue.title.label("text"), literal(-2).label("place")).where(Issue.id == issue_id),
        select(Issue.description, literal(-1)).where(Issue.id == issue_id),
        select(Comment.body, Comment.id).where(
            Comment.issue_id == issue_id, Comment.deleted_at.is_(None)
        ),
    ).subquery()
    texts = list(await session.execute(select(parts.c.text, parts.c.place).order_by(parts.c.place)))
    if not texts or texts[0].place != -2:
        return  # no such issue
    text = " ".join(row.text for row in texts)
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

# The same document made where the text is, in one statement (no text through Python): the
# texts joined as refresh_search_document joins them, for any text within the limit.
_REFRESH_IN_POSTGRESQL = sql_text(
    """
    WITH source AS (
        SELECT issue.id, concat_ws(' ', issue.title, issue.description, (
            SELECT string_agg(comment.body, ' ' ORDER BY comment.id) FROM comment
            WHERE comment.issue_id = issue.id AND comment.deleted_at IS NULL
        )) AS text
        FROM issue WHERE issue.id = :issue_id
    )
    INSERT INTO issue_search (issue_id, document)
    SELECT id, to_tsvector('english'::regconfig, text) FROM source
    WHERE octet_length(text) <= :max_bytes
    ON CONFLICT (issue_id) DO UPDATE SET document = excluded.document
    """
)
