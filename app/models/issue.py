"""An issue, its comments and its labels."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import ClassVar

from sqlalchemy import (
    BigInteger,
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
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, UTCDateTime, utcnow
from app.models.project import Project
from app.models.user import User


class IssueType(StrEnum):
    BUG = "bug"
    FEATURE = "feature"
    TASK = "task"


class Priority(StrEnum):
    URGENT = "urgent"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    NONE = "none"


# The default workflow: the board's columns, in order. Issue 4 makes it per project.
DEFAULT_STATUSES = ("Backlog", "To do", "In progress", "In review", "Done")

# Board positions leave room between neighbours so a move rarely renumbers a column.
POSITION_STEP = 1024


IssueLabel = Table(
    "issue_label",
    Base.metadata,
    Column("issue_id", ForeignKey("issue.id", ondelete="CASCADE"), primary_key=True),
    Column("label_id", ForeignKey("label.id", ondelete="CASCADE"), primary_key=True, index=True),
)


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
        Index("ix_issue_project_id_status_position", "project_id", "status", "position"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(50), default=DEFAULT_STATUSES[0])
    priority: Mapped[str] = mapped_column(String(16), default=Priority.NONE.value)
    type: Mapped[str] = mapped_column(String(16), default=IssueType.TASK.value)
    reporter_id: Mapped[int | None] = mapped_column(
        ForeignKey("user.id", ondelete="SET NULL"), index=True
    )
    assignee_id: Mapped[int | None] = mapped_column(
        ForeignKey("user.id", ondelete="SET NULL"), index=True, default=None
    )
    due_date: Mapped[date | None] = mapped_column(Date, default=None)
    position: Mapped[int] = mapped_column(BigInteger, default=0)
    # Bumped by SQLAlchemy on every UPDATE; a stale writer's UPDATE matches no row.
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __mapper_args__: ClassVar[dict] = {"version_id_col": version}

    project: Mapped[Project] = relationship(lazy="raise")
    reporter: Mapped[User | None] = relationship(foreign_keys=[reporter_id], lazy="raise")
    assignee: Mapped[User | None] = relationship(foreign_keys=[assignee_id], lazy="raise")
    labels: Mapped[list[Label]] = relationship(secondary=IssueLabel, lazy="raise")
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
