"""Two-factor sign-in: a TOTP credential per account and its single-use recovery codes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow


class TotpCredential(Base):
    """An account's authenticator app. The shared secret is stored encrypted (a key derived
    from SECRET_KEY, decision 0023). A row without `confirmed_at` is an enrolment not yet
    proved with a code: it does not switch two-factor on."""

    __tablename__ = "totp_credential"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("user.id", ondelete="CASCADE"), primary_key=True
    )
    secret_encrypted: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # The 30-second time step of the last code accepted: a code is taken only for a later
    # step, by a conditional UPDATE, so a code works once even across workers.
    last_step: Mapped[int] = mapped_column(Integer, default=0)


class RecoveryCode(Base):
    """One single-use recovery code: only its SHA-256 is kept (the code is random, 80 bits)."""

    __tablename__ = "recovery_code"
    # Also the index of an account's codes: user_id leads it.
    __table_args__ = (UniqueConstraint("user_id", "code_digest"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    code_digest: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
