"""Sending queued webhook deliveries: claimed in batches with a lease, POSTed, recorded.

The same pattern as the mail outbox (decision 0004): a sender claims a batch in a short
transaction (on PostgreSQL with FOR UPDATE SKIP LOCKED, so two workers never claim one row),
POSTs it outside any transaction, then records each outcome, skipping a delivery whose lease
another sender has taken over since. Decision 0011 has the rest.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpcore
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import begin_writing, utcnow
from app.models import DeliveryStatus, Webhook, WebhookDelivery
from app.outbound.sender import BackgroundSender, DeliveryReport, retry_delay
from app.outbound.webhooks.targets import GuardedNetworkBackend, RefusedTarget, TargetPolicy

log = logging.getLogger("issues.webhooks")

BATCH_SIZE = 20
USER_AGENT = "Issues-Webhooks/1"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The X-Issues-Signature value: HMAC-SHA256, keyed by the hook's secret, of the ASCII
    timestamp, a full stop, and the body's bytes."""
    signed = str(timestamp).encode("ascii") + b"." + body
    return "sha256=" + hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Claimed:
    """A delivery as claimed: what to send, where, and the lease that makes it ours."""

    id: int
    guid: str
    event: str
    body: str
    claimed_until: datetime
    url: str
    secret: str


@dataclass(frozen=True)
class Outcome:
    result: str  # "delivered", "retry" or "failed"
    status_code: int | None = None
    error: str = ""


class WebhookSender(BackgroundSender[DeliveryReport]):
    """Sends what the delivery queue holds: on demand (`deliver_pending`) and, in a served app,
    from a background task woken by commits that queue deliveries and polling for the rest."""

    name = "webhook sender"
    log = log

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        policy: TargetPolicy,
        timeout: float = 10.0,
        max_attempts: int = 8,
        poll_seconds: float = 5.0,
        first_retry_seconds: float = 30.0,
        last_retry_seconds: float = 3600.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        super().__init__(sessionmaker, poll_seconds=poll_seconds)
        self.policy = policy
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.first_retry_seconds = first_retry_seconds
        self.last_retry_seconds = last_retry_seconds
        # "Now" when claiming and recording, so what decides that a retry is due: a test moves
        # it on rather than sleep through a backoff.
        self.clock = clock
        # A batch is sent concurrently, each POST cut off at `timeout`: the lease covers that
        # with room to spare, so no other sender takes a batch that is still going.
        self.lease = timedelta(seconds=timeout * 3 + 30)

    async def deliver_pending(self) -> DeliveryReport:
        """Send every delivery that is due, batch by batch, and report what happened."""
        report = DeliveryReport()
        # A pool per round: connections are reused within it, and every new one is checked.
        async with httpcore.AsyncConnectionPool(
            network_backend=GuardedNetworkBackend(self.policy),
            max_connections=BATCH_SIZE,
            retries=0,
        ) as pool:
            while batch := await self._claim_batch():
                outcomes = await asyncio.gather(*(self._send(pool, claimed) for claimed in batch))
                await self._record(list(zip(batch, outcomes, strict=True)), report)
        return report

    async def _claim_batch(self) -> list[Claimed]:
        now = self.clock()
        async with self.sessionmaker() as session:
            await begin_writing(session)
            query = (
                select(WebhookDelivery, Webhook.url, Webhook.secret)
                .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
                .where(
                    WebhookDelivery.status == DeliveryStatus.PENDING.value,
                    WebhookDelivery.next_attempt_at <= now,
                    or_(
                        WebhookDelivery.claimed_until.is_(None),
                        WebhookDelivery.claimed_until < now,
                    ),
                    # A disabled hook's deliveries wait for it to be enabled again.
                    Webhook.active.is_(True),
                )
                .order_by(WebhookDelivery.id)
                .limit(BATCH_SIZE)
            )
            if session.bind.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True, of=WebhookDelivery)
            batch = []
            for delivery, url, secret in (await session.execute(query)).all():
                delivery.claimed_until = now + self.lease
                delivery.attempts += 1
                delivery.last_attempt_at = now
                batch.append(
                    Claimed(
                        delivery.id,
                        delivery.guid,
                        delivery.event,
                        delivery.body,
                        delivery.claimed_until,
                        url,
                        secret,
                    )
                )
            await session.commit()
            return batch

    async def _send(self, pool: httpcore.AsyncConnectionPool, claimed: Claimed) -> Outcome:
        body = claimed.body.encode("utf-8")
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Issues-Event": claimed.event,
            "X-Issues-Delivery": claimed.guid,
            "X-Issues-Timestamp": str(timestamp),
            "X-Issues-Signature": signature(claimed.secret, timestamp, body),
        }
        timeouts = dict.fromkeys(("connect", "read", "write", "pool"), self.timeout)
        try:
            # The whole exchange is cut off at the timeout, not just each read: a receiver
            # that trickles bytes cannot hold a sender.
            async with asyncio.timeout(self.timeout):
                # The answer's body is never read: only its status is recorded. Redirects are
                # not followed (httpcore never does).
                async with pool.stream(
                    "POST",
                    claimed.url,
                    headers=headers,
                    content=body,
                    extensions={"timeout": timeouts},
                ) as response:
                    status = response.status
        except RefusedTarget as refusal:
            return Outcome("failed", error=f"refused: {refusal}")
        except TimeoutError:
            return Outcome("retry", error=f"no answer within {self.timeout:g} s")
        except (httpcore.TimeoutException, httpcore.NetworkError) as error:
            return Outcome("retry", error=f"cannot reach the receiver: {error or type(error)}")
        except (httpcore.ProtocolError, httpcore.UnsupportedProtocol, ValueError) as error:
            return Outcome("retry", error=f"bad exchange: {error or type(error).__name__}")
        if 200 <= status < 300:
            return Outcome("delivered", status)
        return Outcome("retry", status, f"answered {status}")

    async def _record(
        self, outcomes: list[tuple[Claimed, Outcome]], report: DeliveryReport
    ) -> None:
        now = self.clock()
        async with self.sessionmaker() as session:
            await begin_writing(session)
            for claimed, outcome in outcomes:
                delivery = await session.get(WebhookDelivery, claimed.id)
                if delivery is None or delivery.claimed_until != claimed.claimed_until:
                    continue  # deleted with its hook, or our lease ran out and another holds it
                delivery.claimed_until = None
                delivery.last_status_code = outcome.status_code
                delivery.last_error = outcome.error[:300]
                if outcome.result == "delivered":
                    delivery.status = DeliveryStatus.DELIVERED.value
                    delivery.delivered_at = now
                    report.delivered += 1
                elif outcome.result == "failed" or delivery.attempts >= self.max_attempts:
                    delivery.status = DeliveryStatus.FAILED.value
                    report.failed += 1
                    log.error("webhook delivery %s failed: %s", delivery.guid, outcome.error)
                else:
                    delivery.next_attempt_at = now + retry_delay(
                        delivery.attempts, self.first_retry_seconds, self.last_retry_seconds
                    )
                    report.retried += 1
                    log.warning(
                        "webhook delivery %s will be retried: %s", delivery.guid, outcome.error
                    )
                if outcome.error:
                    report.errors.append(outcome.error)
            await session.commit()

    def _wait_after(self, report: DeliveryReport) -> float:
        # A retry due sooner than the next poll (short backoffs) is not left waiting.
        if report.retried:
            return min(self.poll_seconds, self.first_retry_seconds)
        return self.poll_seconds
