"""The admin console's outbound queues (decision 0022): mail and webhook deliveries that are
pending or failed, and their retry."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import after_commit
from app.errors import Invalid, NotFound
from app.models import OutboxMessage, Project, User, Webhook, WebhookDelivery
from app.outbound.mail.outbox import make_mail_due
from app.services import audit
from app.services.admin import Page, fetch_page, require_acting_admin
from app.services.project_webhooks import make_deliveries_due
from app.services.transaction import use_case

UNDELIVERED = ("pending", "failed")


def _statuses(status: str) -> list[str]:
    return [status] if status in UNDELIVERED else list(UNDELIVERED)


async def mail_page(
    session: AsyncSession, status: str = "", number: int = 1
) -> Page[OutboxMessage]:
    """Mail waiting (pending) or given up on (failed), or both, newest first."""
    statement = (
        select(OutboxMessage)
        .where(OutboxMessage.status.in_(_statuses(status)))
        .order_by(OutboxMessage.id.desc())
    )
    rows, has_next = await fetch_page(session, statement, number)
    return Page([row[0] for row in rows], number, has_next)


@dataclass(frozen=True)
class DeliveryRow:
    delivery: WebhookDelivery
    url: str
    project_key: str


async def deliveries_page(
    session: AsyncSession, status: str = "", number: int = 1
) -> Page[DeliveryRow]:
    """Webhook deliveries waiting or given up on, or both, newest first, with their hooks."""
    statement = (
        select(WebhookDelivery, Webhook.url, Project.key)
        .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
        .join(Project, Project.id == Webhook.project_id)
        .where(WebhookDelivery.status.in_(_statuses(status)))
        .order_by(WebhookDelivery.id.desc())
    )
    rows, has_next = await fetch_page(session, statement, number)
    return Page([DeliveryRow(*row) for row in rows], number, has_next)


NOT_RETRIABLE = "It is sent already, or being sent right now: there is nothing to retry."


@use_case
async def retry_mail(
    session: AsyncSession, actor: User, message_id: int, origin: audit.Origin = audit.NO_ORIGIN
) -> OutboxMessage:
    """Make one pending or failed message due now, with fresh attempts if it had failed; the
    sender is woken at the commit."""
    await require_acting_admin(session, actor)
    if await session.get(OutboxMessage, message_id) is None:
        raise NotFound("No such message.")
    made_due = await make_mail_due(session, [message_id])
    if not made_due:
        raise Invalid(NOT_RETRIABLE)
    [message] = made_due
    after_commit.note_mail(session)
    audit.record(
        session,
        audit.AuditAction.ADMIN_RETRIED_MAIL,
        actor=actor,
        subject=None,
        origin=origin,
        message_id=message.id,
        to=message.to_address,
        template=message.template,
    )
    return message


@use_case
async def retry_delivery(
    session: AsyncSession, actor: User, delivery_id: int, origin: audit.Origin = audit.NO_ORIGIN
) -> WebhookDelivery:
    """Make one pending or failed webhook delivery due now (the same body and guid), with
    fresh attempts if it had failed; the sender is woken at the commit."""
    await require_acting_admin(session, actor)
    if await session.get(WebhookDelivery, delivery_id) is None:
        raise NotFound("No such delivery.")
    made_due = await make_deliveries_due(session, [delivery_id])
    if not made_due:
        raise Invalid(NOT_RETRIABLE)
    [delivery] = made_due
    after_commit.note_deliveries(session)
    audit.record(
        session,
        audit.AuditAction.ADMIN_RETRIED_WEBHOOK,
        actor=actor,
        subject=None,
        origin=origin,
        delivery_id=delivery.id,
        webhook_id=delivery.webhook_id,
        event=delivery.event,
    )
    return delivery
