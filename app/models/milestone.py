"""A project's milestone: a titled goal with an optional due date that issues are planned into."""

from __future__ import annotations

from datetime import date, datetime
from typing import ClassVar

from sqlalchemy import Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow

TITLE_MAX = 100


class Milestone(Base):
    """Open while `closed_at` is NULL. An issue has at most one (Issue.milestone_id); deleting a
    milestone leaves its issues without one."""

    __tablename__ = "milestone"
    __table_args__ = (UniqueConstraint("project_id", "title"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(TITLE_MAX))
    description: Mapped[str] = mapped_column(Text, default="")  # Markdown
    due_date: Mapped[date | None] = mapped_column(Date, default=None)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # Bumped on every UPDATE, like an issue's: the API's ETag and If-Match.
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __mapper_args__: ClassVar[dict] = {"version_id_col": version}

    @property
    def is_open(self) -> bool:
        return self.closed_at is None

    def is_overdue(self, today: date) -> bool:
        """Open and past its due date (`today` is the caller's, in UTC)."""
        return self.is_open and self.due_date is not None and self.due_date < today
