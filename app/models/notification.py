"""What each watcher should hear about, and the searches people keep."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow


class Notification(Base):
    """One change a watcher should be told about. Unsent rows of one user are mailed together
    once that user's burst of changes has gone quiet (decision 0006)."""

    __tablename__ = "notification"
    __table_args__ = (
        Index("ix_notification_user_id_emailed_at", "user_id", "emailed_at"),
        # The inbox (decision 0028): a person's rows not yet done, newest first, and their
        # unread count, read from this index alone (issue_id and read_at ride along).
        Index(
            "ix_notification_inbox",
            "user_id",
            "done_at",
            "created_at",
            "issue_id",
            "read_at",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    issue_id: Mapped[int] = mapped_column(ForeignKey("issue.id", ondelete="CASCADE"), index=True)
    activity_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), ForeignKey("activity.id", ondelete="CASCADE")
    )
    # assigned, commented, status_changed, mentioned
    reason: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set when mailed, or when it was decided not to mail it (the person turned mail off).
    emailed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # The inbox: read when seen, done when put away (a done row leaves the inbox).
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class SavedSearch(Base):
    __tablename__ = "saved_search"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    query: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
