"""Queueing webhook deliveries in the transaction of the change they announce."""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db import after_commit
from app.models import User, WebhookDelivery


def delivery_body(
    *,
    event_id: str,
    kind: str,
    project_key: str,
    seq: int | None,
    occurred_at: str,
    actor: User | None,
    issue: dict[str, Any] | None,
    data: dict[str, Any],
) -> str:
    """The JSON every receiver gets (documented in README.md, "Webhooks")."""
    return json.dumps(
        {
            "event": kind,
            "event_id": event_id,
            "occurred_at": occurred_at,
            "project": {"key": project_key},
            "seq": seq,
            "actor": {"handle": actor.handle, "name": actor.display_name} if actor else None,
            "issue": issue,
            "data": data,
        },
        ensure_ascii=False,
        separators=(",", ":"),
        default=str,  # dates in an activity's payload
    )


def queue_delivery(
    session: AsyncSession, webhook_id: int, *, event_id: str, kind: str, seq: int | None, body: str
) -> WebhookDelivery:
    """Add one delivery to the caller's transaction; the sender is woken when it commits."""
    delivery = WebhookDelivery(
        webhook_id=webhook_id,
        guid=str(uuid.uuid4()),
        event_id=event_id,
        event=kind,
        activity_seq=seq,
        body=body,
    )
    session.add(delivery)
    after_commit.note_deliveries(session)  # the factory wires the sender's wake to this
    return delivery
