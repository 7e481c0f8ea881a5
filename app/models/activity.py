"""The project's event log: one row per change; the source of history, live stream and replay."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, UTCDateTime, utcnow
from app.models.user import User


class Activity(Base):
    """One change in a project. `seq` is gap-free per project in commit order (decision 0003),
    so a live client that saw event n of a project needs exactly the rows with seq > n."""

    __tablename__ = "activity"
    __table_args__ = (
        UniqueConstraint("project_id", "seq"),
        # An issue's latest event (what its kept page is keyed by), and its history in order.
        Index("ix_activity_issue_id_seq", "issue_id", "seq"),
        # A project's latest change to itself (labels, workflow, members, settings): the other
        # half of that key, found without walking the project's issue events.
        Index(
            "ix_activity_project_id_seq_project_events",
            "project_id",
            "seq",
            postgresql_where=text("issue_id IS NULL"),
            sqlite_where=text("issue_id IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    # Taken at commit, like an issue's number: NULL only inside the writing transaction.
    seq: Mapped[int] = mapped_column(Integer, nullable=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    # Kept when the issue is deleted: the log is history. The issue's number stays in payload.
    issue_id: Mapped[int | None] = mapped_column(ForeignKey("issue.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(
        JSON().with_variant(JSONB(), "postgresql"), default=dict
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    actor: Mapped[User | None] = relationship(lazy="raise")

    def __repr__(self) -> str:
        # From loaded state only: a repr must not query (or raise) for an expired object.
        state = self.__dict__
        return f"<Activity {state.get('project_id')}#{state.get('seq')} {state.get('kind')}>"
