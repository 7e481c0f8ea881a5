"""Relations between two issues: blocks, duplicates, relates to (a sub-issue's parent is a
column of the issue itself, `Issue.parent_id`)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow


class RelationKind(StrEnum):
    """What is stored: one direction per kind (the inverse is derived for display). `relates`
    is symmetric and stored once, with the smaller issue id as its source."""

    BLOCKS = "blocks"
    DUPLICATES = "duplicates"
    RELATES = "relates"


class RelationType(StrEnum):
    """A relation as seen from one of its issues: what people pick and the API names."""

    BLOCKS = "blocks"
    BLOCKED_BY = "blocked_by"
    DUPLICATES = "duplicates"
    DUPLICATED_BY = "duplicated_by"
    RELATES_TO = "relates_to"

    @property
    def stored(self) -> tuple[RelationKind, bool]:
        """The stored kind, and whether the issue it is seen from is the stored target."""
        return _STORED[self]

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")


_STORED = {
    RelationType.BLOCKS: (RelationKind.BLOCKS, False),
    RelationType.BLOCKED_BY: (RelationKind.BLOCKS, True),
    RelationType.DUPLICATES: (RelationKind.DUPLICATES, False),
    RelationType.DUPLICATED_BY: (RelationKind.DUPLICATES, True),
    RelationType.RELATES_TO: (RelationKind.RELATES, False),
}


def seen_from(kind: str, as_target: bool) -> RelationType:
    """The type of a stored relation seen from its source (as_target False) or its target."""
    for relation_type, stored in _STORED.items():
        if stored == (RelationKind(kind), as_target):
            return relation_type
    return RelationType.RELATES_TO  # relates: the same from both ends


class IssueRelation(Base):
    __tablename__ = "issue_relation"
    __table_args__ = (
        UniqueConstraint("source_id", "target_id", "kind"),
        CheckConstraint("source_id <> target_id", name="not_itself"),
        # The other direction: what blocks an issue, what duplicates it.
        Index("ix_issue_relation_target_id_kind", "target_id", "kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("issue.id", ondelete="CASCADE"))
    target_id: Mapped[int] = mapped_column(ForeignKey("issue.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
