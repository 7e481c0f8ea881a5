"""Search documents: each issue's title, description and comments, kept ready for full text."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, literal_column, select
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
