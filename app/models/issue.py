"""An issue, its comments and its labels."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import ClassVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, UTCDateTime, utcnow
from app.models.project import Project, key_pattern
from app.models.user import User


# Each enum is the one list of its values: the services check against it, the API's schemas and
# the search box's qualifiers are made from it.
class IssueType(StrEnum):
    BUG = "bug"
    FEATURE = "feature"
    TASK = "task"


class Priority(StrEnum):
    """From most to least urgent: sorting by priority follows this order."""

    URGENT = "urgent"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    NONE = "none"


class StatusCategory(StrEnum):
    """What a workflow status means, whatever it is called: open work, work under way, done."""

    TODO = "todo"
    IN_PROGRESS = "in_progress"
    DONE = "done"


# A new project's workflow: the board's columns, in order, each in its category.
DEFAULT_WORKFLOW = (
    ("Backlog", StatusCategory.TODO),
    ("To do", StatusCategory.TODO),
    ("In progress", StatusCategory.IN_PROGRESS),
    ("In review", StatusCategory.IN_PROGRESS),
    ("Done", StatusCategory.DONE),
)


def issue_key_pattern(*, any_case: bool = False) -> str:
    """An issue's key as a regular expression: its project's key and its number (WEB-12)."""
    return f"{key_pattern(any_case=any_case)}-[0-9]{{1,9}}"


# Board positions leave room between neighbours so a move rarely renumbers a column.
POSITION_STEP = 1024


IssueLabel = Table(
    "issue_label",
    Base.metadata,
    Column("issue_id", ForeignKey("issue.id", ondelete="CASCADE"), primary_key=True),
    Column("label_id", ForeignKey("label.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class WorkflowStatus(Base):
    """One column of a project's board."""

    __tablename__ = "workflow_status"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(50))
    category: Mapped[str] = mapped_column(String(16), default=StatusCategory.TODO.value)
    position: Mapped[int] = mapped_column(Integer, default=0)

    @property
    def is_done(self) -> bool:
        return self.category == StatusCategory.DONE


class Label(Base):
    __tablename__ = "label"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(50))
    color: Mapped[str] = mapped_column(String(7), default="#6b7280")


class Issue(Base):
    __tablename__ = "issue"
    __table_args__ = (
        UniqueConstraint("project_id", "number"),
        Index("ix_issue_project_id_status_id_position", "project_id", "status_id", "position"),
        Index("ix_issue_project_id_updated_at", "project_id", "updated_at"),
        # Keyset pagination across projects (search sorted by update or creation time).
        Index("ix_issue_updated_at_id", "updated_at", "id"),
        Index("ix_issue_created_at_id", "created_at", "id"),
        # A milestone's issues (its page, progress and burn-up chart), and the board filtered
        # by milestone (a column's cards in order).
        Index(
            "ix_issue_project_id_milestone_id_status_id_position",
            "project_id",
            "milestone_id",
            "status_id",
            "position",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    # Taken at commit (services/activity.take_numbers): NULL only inside the creating
    # transaction, never in a committed row.
    number: Mapped[int] = mapped_column(Integer, nullable=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    status_id: Mapped[int] = mapped_column(ForeignKey("workflow_status.id", ondelete="RESTRICT"))
    priority: Mapped[str] = mapped_column(String(16), default=Priority.NONE.value)
    type: Mapped[str] = mapped_column(String(16), default=IssueType.TASK.value)
    reporter_id: Mapped[int | None] = mapped_column(
        ForeignKey("user.id", ondelete="SET NULL"), index=True
    )
    assignee_id: Mapped[int | None] = mapped_column(
        ForeignKey("user.id", ondelete="SET NULL"), index=True, default=None
    )
    due_date: Mapped[date | None] = mapped_column(Date, default=None)
    # A sub-issue's parent, in the same project (services/relations checks it and refuses cycles).
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("issue.id", ondelete="SET NULL"), index=True, default=None
    )
    position: Mapped[int] = mapped_column(BigInteger, default=0)
    milestone_id: Mapped[int | None] = mapped_column(
        ForeignKey("milestone.id", ondelete="SET NULL"), default=None
    )
    estimate: Mapped[int | None] = mapped_column(Integer, default=None)  # story points
    # The key or number it had in the tracker it was imported from (ABC-123, #12): searchable
    # with imported:ABC-123 and by its words (decision 0029).
    external_key: Mapped[str | None] = mapped_column(String(64), default=None, index=True)
    # Bumped by SQLAlchemy on every UPDATE; a stale writer's UPDATE matches no row.
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __mapper_args__: ClassVar[dict] = {"version_id_col": version}

    project: Mapped[Project] = relationship(lazy="raise")
    status: Mapped[WorkflowStatus] = relationship(lazy="raise")
    reporter: Mapped[User | None] = relationship(foreign_keys=[reporter_id], lazy="raise")
    assignee: Mapped[User | None] = relationship(foreign_keys=[assignee_id], lazy="raise")
    labels: Mapped[list[Label]] = relationship(secondary=IssueLabel, lazy="raise")
    parent: Mapped[Issue | None] = relationship(remote_side=[id], lazy="raise")
    comments: Mapped[list[Comment]] = relationship(
        back_populates="issue", lazy="raise", order_by="Comment.id"
    )

    @property
    def key(self) -> str:
        """The issue's name everywhere, such as WEB-12 (needs the project loaded)."""
        return f"{self.project.key}-{self.number}"


class Comment(Base):
    __tablename__ = "comment"

    id: Mapped[int] = mapped_column(primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("issue.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int | None] = mapped_column(
        ForeignKey("user.id", ondelete="SET NULL"), index=True
    )
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    edited_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    issue: Mapped[Issue] = relationship(back_populates="comments", lazy="raise")
    author: Mapped[User | None] = relationship(lazy="raise")


class Watcher(Base):
    """Who follows an issue. A row with watching=False records an explicit unwatch, so that
    commenting or being mentioned later does not quietly subscribe the person again."""

    __tablename__ = "watcher"

    issue_id: Mapped[int] = mapped_column(
        ForeignKey("issue.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("user.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    watching: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class IssueSearch(Base):
    """The text that free words in a search match: title, description and comments.

    On PostgreSQL `document` is a tsvector with a GIN index; on SQLite it is the plain text, and
    an FTS5 table kept in step by triggers (created by the migration) indexes it.
    """

    __tablename__ = "issue_search"
    __table_args__ = (Index("ix_issue_search_document", "document", postgresql_using="gin"),)

    issue_id: Mapped[int] = mapped_column(
        ForeignKey("issue.id", ondelete="CASCADE"), primary_key=True
    )
    document: Mapped[str] = mapped_column(TSVECTOR().with_variant(Text(), "sqlite"))
