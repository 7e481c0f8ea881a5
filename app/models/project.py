"""A project (the home of a set of issues, its key prefixes them) and who belongs to it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, UTCDateTime, utcnow
from app.models.user import User

KEY_MAX_LENGTH = 10


def key_pattern(*, any_case: bool = False) -> str:
    """The one rule for a project key, as a regular expression: a letter, then 1 to 9 letters
    or digits (WEB, API2). Keys are stored in capitals; `any_case` is for URLs, which may spell
    them in lower case (the lookups capitalise)."""
    letter = "A-Za-z" if any_case else "A-Z"
    return f"[{letter}][{letter}0-9]{{1,{KEY_MAX_LENGTH - 1}}}"


KEY_PATTERN = key_pattern()


class Role(StrEnum):
    """A member's role, from most to least powerful."""

    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"
    VIEWER = "viewer"

    @property
    def can_write_issues(self) -> bool:
        return self is not Role.VIEWER

    @property
    def can_manage_project(self) -> bool:
        return self in (Role.OWNER, Role.ADMIN)


class Project(Base):
    __tablename__ = "project"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(KEY_MAX_LENGTH), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    is_public: Mapped[bool] = mapped_column(Boolean, default=False)
    # Counters taken under this row's lock, so that issue numbers and event sequence numbers
    # are unique and gap-free per project in commit order (decision 0003).
    last_issue_number: Mapped[int] = mapped_column(Integer, default=0)
    last_event_seq: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    memberships: Mapped[list[Membership]] = relationship(
        back_populates="project", lazy="raise", cascade="all, delete-orphan"
    )

    def __repr__(self) -> str:
        return f"<Project {self.__dict__.get('key', '?')}>"  # loaded state only: never queries


class Membership(Base):
    __tablename__ = "membership"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("project.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("user.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(String(16), default=Role.MEMBER.value)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    project: Mapped[Project] = relationship(back_populates="memberships", lazy="raise")
    user: Mapped[User] = relationship(lazy="raise")
