"""Webhooks of a project: its admins add, change and remove them, and redeliver events."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterable

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.errors import Invalid, NotFound
from app.models import DeliveryStatus, User, Webhook, WebhookDelivery
from app.models.webhook import ALL_EVENTS
from app.outbound.webhooks.queue import delivery_body, queue_delivery
from app.outbound.webhooks.targets import RefusedTarget, TargetPolicy, check_url
from app.services.access import managed_project
from app.services.transaction import use_case

# The activity kinds a hook may choose (project.created happens before any hook can exist).
EVENT_KINDS = (
    "issue.created",
    "issue.updated",
    "issue.moved",
    "comment.added",
    "comment.edited",
    "comment.deleted",
    "member.added",
    "member.role_changed",
    "member.removed",
    "project.updated",
    "project.workflow_changed",
    "project.labels_changed",
    "project.archived",
    "project.unarchived",
)
RECENT_DELIVERIES = 20


def new_secret() -> str:
    return secrets.token_hex(32)


def _events(chosen: Iterable[str]) -> str:
    kinds = set(chosen)
    if ALL_EVENTS in kinds:
        return ALL_EVENTS
    unknown = kinds - set(EVENT_KINDS)
    if unknown:
        raise Invalid(f"Unknown event {sorted(unknown)[0]}.", field="events")
    if not kinds:
        raise Invalid("Choose at least one event, or all of them.", field="events")
    return ",".join(kind for kind in EVENT_KINDS if kind in kinds)


async def _checked_url(url: str, policy: TargetPolicy) -> str:
    try:
        return await check_url(url, policy)
    except RefusedTarget as refusal:
        raise Invalid(str(refusal), field="url") from refusal


async def _hook(session: AsyncSession, project_id: int, webhook_id: int) -> Webhook:
    hook = await session.get(Webhook, webhook_id)
    if hook is None or hook.project_id != project_id:
        raise NotFound("No such webhook.")
    return hook


# --- Reading (owners and admins only: a hook's secret is on its page) --------------------------


async def project_webhooks(session: AsyncSession, actor: User, project_id: int) -> list[Webhook]:
    await managed_project(session, actor, project_id)
    return list(
        await session.scalars(
            select(Webhook).where(Webhook.project_id == project_id).order_by(Webhook.id)
        )
    )


async def webhook_page(
    session: AsyncSession, actor: User, project_id: int, webhook_id: int
) -> tuple[Webhook, list[WebhookDelivery]]:
    """The hook and its last deliveries, newest first."""
    await managed_project(session, actor, project_id)
    hook = await _hook(session, project_id, webhook_id)
    deliveries = await session.scalars(
        select(WebhookDelivery)
        .where(WebhookDelivery.webhook_id == hook.id)
        .order_by(WebhookDelivery.id.desc())
        .limit(RECENT_DELIVERIES)
    )
    return hook, list(deliveries)


# --- Changing ---------------------------------------------------------------------------------
# Who asks is checked before the URL is resolved (an outsider learns nothing from the answer),
# and the URL is resolved before the transaction (no write lock held over a DNS lookup).


async def create_webhook(
    session: AsyncSession,
    actor: User,
    project_id: int,
    *,
    url: str,
    events: Iterable[str],
    policy: TargetPolicy,
) -> Webhook:
    """Add a hook with a new secret. Raises Invalid for a refused URL or no events."""
    await managed_project(session, actor, project_id)
    kinds = _events(events)
    return await _add_webhook(session, actor, project_id, await _checked_url(url, policy), kinds)


@use_case
async def _add_webhook(
    session: AsyncSession, actor: User, project_id: int, url: str, events: str
) -> Webhook:
    await managed_project(session, actor, project_id)
    hook = Webhook(
        project_id=project_id,
        url=url,
        secret=new_secret(),
        events=events,
        active=True,
        created_by_id=actor.id,
    )
    session.add(hook)
    return hook


async def update_webhook(
    session: AsyncSession,
    actor: User,
    project_id: int,
    webhook_id: int,
    *,
    url: str,
    events: Iterable[str],
    active: bool,
    policy: TargetPolicy,
) -> Webhook:
    await managed_project(session, actor, project_id)
    await _hook(session, project_id, webhook_id)
    kinds = _events(events)
    url = await _checked_url(url, policy)
    return await _change_webhook(
        session, actor, project_id, webhook_id, url=url, events=kinds, active=active
    )


@use_case
async def _change_webhook(
    session: AsyncSession,
    actor: User,
    project_id: int,
    webhook_id: int,
    *,
    url: str,
    events: str,
    active: bool,
) -> Webhook:
    await managed_project(session, actor, project_id)
    hook = await _hook(session, project_id, webhook_id)
    hook.url, hook.events, hook.active = url, events, active
    return hook


@use_case
async def set_webhook_active(
    session: AsyncSession, actor: User, project_id: int, webhook_id: int, active: bool
) -> None:
    """Pause or resume a hook: a paused hook's deliveries wait, new events are not queued."""
    await managed_project(session, actor, project_id)
    (await _hook(session, project_id, webhook_id)).active = active


@use_case
async def new_webhook_secret(
    session: AsyncSession, actor: User, project_id: int, webhook_id: int
) -> Webhook:
    """Replace the secret; deliveries from now on (retries included) are signed with the new one."""
    await managed_project(session, actor, project_id)
    hook = await _hook(session, project_id, webhook_id)
    hook.secret = new_secret()
    return hook


@use_case
async def delete_webhook(
    session: AsyncSession, actor: User, project_id: int, webhook_id: int
) -> None:
    """Remove the hook with its deliveries (one being sent right now may still arrive)."""
    await managed_project(session, actor, project_id)
    await session.delete(await _hook(session, project_id, webhook_id))


@use_case
async def redeliver(
    session: AsyncSession, actor: User, project_id: int, webhook_id: int, delivery_id: int
) -> WebhookDelivery:
    """Queue the delivery's event again: the same body (and event_id), a new delivery id."""
    await managed_project(session, actor, project_id)
    hook = await _hook(session, project_id, webhook_id)
    original = await session.get(WebhookDelivery, delivery_id)
    if original is None or original.webhook_id != hook.id:
        raise NotFound("No such delivery.")
    delivery = queue_delivery(
        session,
        hook.id,
        event_id=original.event_id,
        kind=original.event,
        seq=original.activity_seq,
        body=original.body,
    )
    return delivery


@use_case
async def send_ping(
    session: AsyncSession, actor: User, project_id: int, webhook_id: int
) -> WebhookDelivery:
    """Queue a `ping` event to the hook (whatever events it chose), to try a receiver."""
    project = await managed_project(session, actor, project_id)
    hook = await _hook(session, project_id, webhook_id)
    event_id = str(uuid.uuid4())
    body = delivery_body(
        event_id=event_id,
        kind="ping",
        project_key=project.key,
        seq=None,
        occurred_at=utcnow().isoformat().replace("+00:00", "Z"),
        actor=actor,
        issue=None,
        data={"webhook_id": hook.id},
    )
    delivery = queue_delivery(session, hook.id, event_id=event_id, kind="ping", seq=None, body=body)
    return delivery


# --- What an admin sees and retries from the shell (quart --app app webhooks ...) --------------


async def pending_deliveries(session: AsyncSession, *, limit: int = 200) -> list[WebhookDelivery]:
    """Deliveries still waiting (pending) or given up on (failed), oldest first."""
    return list(
        await session.scalars(
            select(WebhookDelivery)
            .where(
                WebhookDelivery.status.in_(
                    [DeliveryStatus.PENDING.value, DeliveryStatus.FAILED.value]
                )
            )
            .order_by(WebhookDelivery.id)
            .limit(limit)
        )
    )


@use_case
async def retry_failed(session: AsyncSession, ids: list[int] | None = None) -> int:
    """Make failed deliveries (all, or those of `ids`) pending again with fresh attempts, due
    now; pending ones named in `ids` become due now. Commits; returns how many."""
    return len(await make_deliveries_due(session, ids))


async def make_deliveries_due(
    session: AsyncSession, ids: list[int] | None = None
) -> list[WebhookDelivery]:
    """What retry_failed changes, in the caller's transaction (the admin console's use case
    adds its audit row to it): the deliveries made due now."""
    now = utcnow()
    query = select(WebhookDelivery).where(
        WebhookDelivery.status.in_([DeliveryStatus.PENDING.value, DeliveryStatus.FAILED.value]),
        # One a sender holds right now is being sent: touching it could send it twice.
        or_(WebhookDelivery.claimed_until.is_(None), WebhookDelivery.claimed_until < now),
    )
    query = (
        query.where(WebhookDelivery.id.in_(ids))
        if ids is not None
        else query.where(WebhookDelivery.status == DeliveryStatus.FAILED.value)
    )
    deliveries = list(await session.scalars(query))
    for delivery in deliveries:
        if delivery.status == DeliveryStatus.FAILED.value:
            delivery.status, delivery.attempts = DeliveryStatus.PENDING.value, 0
        delivery.next_attempt_at, delivery.claimed_until = now, None
    return deliveries


def describe_delivery(delivery: WebhookDelivery) -> str:
    """One line (two with an error) for `webhooks pending`."""
    line = (
        f"{delivery.id:>6}  {delivery.status:<9}  attempts {delivery.attempts:<2}  "
        f"next {delivery.next_attempt_at:%Y-%m-%d %H:%M}  hook {delivery.webhook_id}  "
        f"{delivery.event}  {delivery.guid}"
    )
    return line + (f"\n        last error: {delivery.last_error}" if delivery.last_error else "")
