"""The security audit log: who did what to which account, when, from which address."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow


class AuditEvent(Base):
    """One security event (decision 0021). Written in the same commit as the change it records,
    so a change without its row (or a row without its change) cannot exist. Kept when the
    people it names are deleted: the names stay in `actor_email` and `subject_email`."""

    __tablename__ = "audit_event"
    __table_args__ = (
        # A person's own log (the account page) and an admin's search by person, newest first.
        Index("ix_audit_event_subject_id_id", "subject_id", "id"),
        Index("ix_audit_event_actor_id_id", "actor_id", "id"),
        Index("ix_audit_event_action_id", "action", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # A dotted name from app.services.audit.AuditAction: "login.failed", "totp.enabled", ...
    action: Mapped[str] = mapped_column(String(40))
    # Who acted (None for an anonymous attempt) and whose account it concerns (often the same).
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    subject_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    actor_email: Mapped[str] = mapped_column(String(320), default="")
    subject_email: Mapped[str] = mapped_column(String(320), default="")
    client_address: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(200), default="")
    # What else the event needs to be read: a token's name, a role, a project key. Never a secret.
    detail: Mapped[dict[str, Any]] = mapped_column(
        JSON().with_variant(JSONB(), "postgresql"), default=dict
    )

    def __repr__(self) -> str:
        state = self.__dict__
        return f"<AuditEvent {state.get('id')} {state.get('action')}>"
