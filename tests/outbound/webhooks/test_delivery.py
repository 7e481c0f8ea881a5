"""Webhook deliveries reach a real receiver: signed, retried, once, across workers and restarts."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta

from quart import Quart
from sqlalchemy import func, select, update

from app.db import utcnow
from app.models import DeliveryStatus, Project, User, WebhookDelivery
from app.outbound.sender import retry_delay
from app.services import comments, issues, project_webhooks
from app.services.activity import record_activity, take_numbers
from tests.factories import make_issue, make_project, make_user
from tests.mailcatcher import MailCatcher
from tests.outbound.webhooks.conftest import add_hook, deliveries, hook_app
from tests.outbound.webhooks.receiver import Receiver
from tests.waiting import eventually


class StoppedClock:
    """The time it was when made, until the test moves it on: waits take no wall time, and
    a slow machine cannot make something come due early."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delay: timedelta) -> None:
        self.now += delay


async def make_retries_due(app: Quart) -> None:
    async with app.extensions["database"].sessionmaker() as session:
        await session.execute(update(WebhookDelivery).values(next_attempt_at=utcnow()))
        await session.commit()


async def test_an_issue_change_is_posted_once_signed_with_the_hooks_secret(
    app: Quart, session, owner: User, project: Project, receiver: Receiver
) -> None:
    hook = await add_hook(session, owner, project, receiver.url, events=["issue.created"])
    before = int(time.time())
    issue = await make_issue(session, owner, project, title="Login fails on Safari")
    await comments.add_comment(session, owner, issue.id, "Not an event this hook asked for")

    report = await app.extensions["webhook_sender"].deliver_pending()

    assert (report.delivered, report.retried, report.failed) == (1, 0, 0)
    [request] = receiver.requests
    assert (request.method, request.path) == ("POST", "/hooks/issues")
    assert request.signature_is_valid(hook.secret)
    assert not request.signature_is_valid("another secret")
    headers = request.headers
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"] == "Issues-Webhooks/1"
    assert headers["x-issues-event"] == "issue.created"
    assert before <= int(headers["x-issues-timestamp"]) <= time.time()
    [delivery] = await deliveries(app)
    assert headers["x-issues-delivery"] == delivery.guid
    assert request.body == delivery.body.encode()
    body = request.json
    assert body["event"] == "issue.created"
    assert body["event_id"] == delivery.event_id
    assert body["project"] == {"key": "WEB"}
    assert body["seq"] == delivery.activity_seq == 2  # 1 was project.created
    assert body["actor"]["handle"] == owner.handle
    assert body["issue"] == {
        "key": "WEB-1",
        "number": 1,
        "title": "Login fails on Safari",
        "status": "Backlog",
    }
    assert body["data"]["title"] == "Login fails on Safari"
    assert body["occurred_at"].endswith("Z")
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (
        DeliveryStatus.DELIVERED,
        1,
        200,
    )
    assert (await app.extensions["webhook_sender"].deliver_pending()).handled == 0


async def test_a_500_is_retried_after_the_backoff_and_delivered_once(
    database_url: str, mailbox: MailCatcher, receiver: Receiver
) -> None:
    app = hook_app(database_url, mailbox, WEBHOOK_FIRST_RETRY_SECONDS=0.3)
    async with app.test_app(), app.extensions["database"].sessionmaker() as session:
        owner = await make_user(session)
        project = await make_project(session, owner)
        await add_hook(session, owner, project, receiver.url)
        await make_issue(session, owner, project)
        receiver.answers.extend([500])
        sender = app.extensions["webhook_sender"]
        sender.clock = clock = StoppedClock()  # stopped after the delivery was queued: it is due

        first = await sender.deliver_pending()
        assert (first.delivered, first.retried) == (0, 1)
        assert first.errors == ["answered 500"]
        assert (await sender.deliver_pending()).handled == 0  # not due yet: backing off
        [waiting] = await deliveries(app)
        assert waiting.next_attempt_at - waiting.last_attempt_at >= retry_delay(1, 0.3, 3600)
        assert waiting.last_status_code == 500
        clock.advance(retry_delay(1, 0.3, 3600))
        assert (await sender.deliver_pending()).delivered == 1

    [delivery] = await deliveries(app)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (
        DeliveryStatus.DELIVERED,
        2,
        200,
    )
    # A retry is the same delivery: same id, same body, a fresh timestamp and signature.
    assert len(receiver.requests) == 2
    assert len(set(receiver.delivery_ids())) == 1
    assert receiver.requests[0].body == receiver.requests[1].body


async def test_two_workers_sending_at_once_deliver_each_event_exactly_once(
    database_url: str, mailbox: MailCatcher, receiver: Receiver
) -> None:
    workers = [hook_app(database_url, mailbox) for _ in range(2)]
    receiver.delay = 0.01  # long enough for the two workers' batches to overlap
    async with workers[0].test_app(), workers[1].test_app():
        async with workers[0].extensions["database"].sessionmaker() as session:
            owner = await make_user(session)
            project = await make_project(session, owner)
            await add_hook(session, owner, project, receiver.url)
            await add_hook(session, owner, project, receiver.url + "?second")
            for _ in range(25):
                await make_issue(session, owner, project)
        reports = await asyncio.gather(
            *(worker.extensions["webhook_sender"].deliver_pending() for worker in workers)
        )
        statuses = {delivery.status for delivery in await deliveries(workers[0])}
    assert sum(report.delivered for report in reports) == 50
    assert all(report.delivered for report in reports)  # both took a share
    ids = receiver.delivery_ids()
    assert len(ids) == len(set(ids)) == 50
    assert statuses == {DeliveryStatus.DELIVERED}


async def test_deliveries_queued_while_the_receiver_is_down_survive_a_restart(
    database_url: str, mailbox: MailCatcher, receiver: Receiver
) -> None:
    await receiver.stop()  # the port stays ours to open again
    first = hook_app(database_url, mailbox)
    async with first.test_app(), first.extensions["database"].sessionmaker() as session:
        owner = await make_user(session)
        project = await make_project(session, owner)
        await add_hook(session, owner, project, receiver.url)
        for _ in range(3):
            await make_issue(session, owner, project)
        report = await first.extensions["webhook_sender"].deliver_pending()
        assert report.retried == 3
        assert "cannot reach" in report.errors[0]

    await receiver.start()
    second = hook_app(database_url, mailbox)
    async with second.test_app():
        await make_retries_due(second)
        assert (await second.extensions["webhook_sender"].deliver_pending()).delivered == 3
    assert len(set(receiver.delivery_ids())) == len(receiver.requests) == 3
    assert [request.json["issue"]["number"] for request in receiver.requests] == [1, 2, 3]


async def test_a_rolled_back_change_queues_nothing(
    app: Quart, session, owner: User, project: Project, receiver: Receiver
) -> None:
    await add_hook(session, owner, project, receiver.url)
    issue = await make_issue(session, owner, project)
    await app.extensions["webhook_sender"].deliver_pending()
    receiver.requests.clear()

    await record_activity(session, project, owner, "issue.updated", issue=issue)
    await take_numbers(session)  # as use_case does before its commit: the seq, then deliveries
    assert any(isinstance(row, WebhookDelivery) for row in session.new)  # in this transaction...
    await session.rollback()  # ...and goes with it

    count = select(func.count()).select_from(WebhookDelivery)
    assert await session.scalar(count) == 1  # the issue.created one, delivered
    assert (await app.extensions["webhook_sender"].deliver_pending()).handled == 0
    assert receiver.requests == []


async def test_a_paused_hook_gets_nothing_new_and_its_waiting_deliveries_wait(
    app: Quart, session, owner: User, project: Project, receiver: Receiver
) -> None:
    hook = await add_hook(session, owner, project, receiver.url)
    issue = await make_issue(session, owner, project)
    await project_webhooks.set_webhook_active(session, owner, project.id, hook.id, False)
    await issues.update_issue(
        session, owner, issue.id, issues.IssueChanges(title="Renamed"), expected_version=None
    )
    sender = app.extensions["webhook_sender"]
    assert (await sender.deliver_pending()).handled == 0
    await project_webhooks.set_webhook_active(session, owner, project.id, hook.id, True)
    assert (await sender.deliver_pending()).delivered == 1
    assert [request.json["event"] for request in receiver.requests] == ["issue.created"]


async def test_a_served_app_delivers_soon_after_the_commit(
    database_url: str, mailbox: MailCatcher, receiver: Receiver
) -> None:
    app = hook_app(database_url, mailbox, WEBHOOK_SEND_IN_BACKGROUND=True, WEBHOOK_POLL_SECONDS=60)
    async with app.test_app(), app.extensions["database"].sessionmaker() as session:
        owner = await make_user(session)
        project = await make_project(session, owner)
        await add_hook(session, owner, project, receiver.url)
        await make_issue(session, owner, project)
        # The commit wakes the sender: no poll interval (60 s here) to wait for.
        assert await eventually(lambda: receiver.requests)
    assert [request.json["event"] for request in receiver.requests] == ["issue.created"]


def test_retries_back_off_doubling_up_to_the_last_delay() -> None:
    delays = [retry_delay(attempt, 30, 3600).total_seconds() for attempt in range(1, 12)]
    assert delays[:3] == [30, 60, 120]
    assert delays == sorted(delays)
    assert delays[-1] == 3600


async def test_a_delivery_out_of_attempts_fails_and_an_admin_can_retry_it(
    database_url: str, mailbox: MailCatcher, receiver: Receiver
) -> None:
    app = hook_app(database_url, mailbox, WEBHOOK_MAX_ATTEMPTS=2)
    async with app.test_app(), app.extensions["database"].sessionmaker() as session:
        owner = await make_user(session)
        project = await make_project(session, owner)
        await add_hook(session, owner, project, receiver.url)
        await make_issue(session, owner, project)
        receiver.answers.extend([503, 503])
        sender = app.extensions["webhook_sender"]
        for _ in range(2):
            await make_retries_due(app)
            await sender.deliver_pending()
        [failed] = await project_webhooks.pending_deliveries(session)
        assert (failed.status, failed.attempts) == (DeliveryStatus.FAILED, 2)
        assert "answered 503" in project_webhooks.describe_delivery(failed)

        assert await project_webhooks.retry_failed(session) == 1
        assert (await sender.deliver_pending()).delivered == 1
        assert await project_webhooks.pending_deliveries(session) == []
    assert len(receiver.requests) == 3
