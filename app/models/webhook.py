"""Webhooks: a project's subscriptions to its events, and the deliveries waiting to be sent."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow

# The events a hook may ask for; "*" stands for all of them (and any added later).
ALL_EVENTS = "*"


class Webhook(Base):
    """A URL that receives a project's events, signed with `secret` (decision 0011)."""

    __tablename__ = "webhook"
    __table_args__ = (Index("ix_webhook_project_id_active", "project_id", "active"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(String(2000))
    # Kept as given, not hashed: it signs every delivery, and admins copy it into the receiver.
    secret: Mapped[str] = mapped_column(String(64))
    # Comma-separated event kinds (issue.created,comment.added), or "*" for all.
    events: Mapped[str] = mapped_column(String(500), default=ALL_EVENTS)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def event_kinds(self) -> list[str]:
        return [kind for kind in self.events.split(",") if kind]

    def wants(self, kind: str) -> bool:
        return self.events == ALL_EVENTS or kind in self.event_kinds


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"  # out of attempts, or the target was refused


class WebhookDelivery(Base):
    """One POST of one event to one hook. The body is built when queued and never changes, so
    a retry or a redelivery sends the same bytes; a retry keeps `guid` (the X-Issues-Delivery
    header), a redelivery is a new row with a new one."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        Index("ix_webhook_delivery_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_webhook_delivery_webhook_id_id", "webhook_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhook.id", ondelete="CASCADE"))
    guid: Mapped[str] = mapped_column(String(36), unique=True)
    # The event's id in the body: the same for every delivery of one event to one hook.
    event_id: Mapped[str] = mapped_column(String(36))
    event: Mapped[str] = mapped_column(String(40))
    # The project's activity seq it came from (none for a ping); no foreign key, since pruning
    # the activity log must not take undelivered events with it.
    activity_seq: Mapped[int | None] = mapped_column(Integer, default=None)
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default=DeliveryStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # A sender that claims the delivery holds it until then; past it, another may retry.
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    last_status_code: Mapped[int | None] = mapped_column(SmallInteger, default=None)
    last_error: Mapped[str] = mapped_column(String(300), default="")
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
