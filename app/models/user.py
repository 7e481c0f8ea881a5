"""A person who can log in."""

from __future__ import annotations

import functools
from datetime import datetime

from sqlalchemy import Boolean, String, false
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow


class User(Base):
    __tablename__ = "user"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Stored normalised (trimmed, lower-case), so the unique index is case-insensitive in effect.
    email: Mapped[str] = mapped_column(String(320), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    # What @mentions use: unique, lower-case letters, digits, dots, dashes and underscores.
    handle: Mapped[str] = mapped_column(String(40), unique=True)
    # None for an account that has no password yet (created by an admin, say).
    password_hash: Mapped[str | None] = mapped_column(String(255), default=None)
    email_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    # Mail about watched issues (assigned, commented on, status changed); the user can turn it off.
    notify_by_email: Mapped[bool] = mapped_column(Boolean, default=True)
    # A person an import named but nobody has an account for: no password, an address under
    # .invalid (never delivered), never a member; an admin merges it into a real account.
    is_placeholder: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set by a site admin: every door (cookie, token, stream, sign-in) refuses the account.
    deactivated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    @property
    def initials(self) -> str:
        return initials_of(self.display_name, self.email)

    def __repr__(self) -> str:
        state = self.__dict__  # loaded state only: a repr must not query, or raise when expired
        return f"<User {state.get('id')} {state.get('email')}>"


@functools.lru_cache(maxsize=4096)  # a board asks for the same few people's, hundreds of times
def initials_of(display_name: str, email: str) -> str:
    """What an avatar shows: the first letters of two words of the name, else of the address."""
    words = display_name.split()
    return "".join(word[0] for word in words[:2]).upper() or email[0].upper()
