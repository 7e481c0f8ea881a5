"""The outbox: mail survives SMTP outages and restarts, and is delivered exactly once."""

from __future__ import annotations

import asyncio
import logging

import pytest
from quart import Quart
from sqlalchemy import select, update

from app import create_app
from app.db import utcnow
from app.models import MailStatus, OutboxMessage
from app.outbound.mail import enqueue_mail
from app.outbound.mail.outbox import FIRST_RETRY_SECONDS, LAST_RETRY_SECONDS
from app.outbound.sender import retry_delay
from tests.conftest import app_settings
from tests.mailcatcher import MailCatcher
from tests.pages import sign_up
from tests.waiting import eventually

SIGN_UPS = 12


async def statuses(app: Quart) -> list[str]:
    async with app.extensions["database"].sessionmaker() as session:
        return list(await session.scalars(select(OutboxMessage.status).order_by(OutboxMessage.id)))


async def make_retries_due(app: Quart) -> None:
    async with app.extensions["database"].sessionmaker() as session:
        await session.execute(update(OutboxMessage).values(next_attempt_at=utcnow()))
        await session.commit()


async def queue(
    app: Quart, count: int, *, to: str = "person{n}@example.com", name: str = ""
) -> None:
    async with app.extensions["database"].sessionmaker() as session:
        for n in range(count):
            enqueue_mail(
                session,
                to_address=to.format(n=n),
                to_name=name,
                template="password_changed",
                name="Someone",
                link="http://issues.test/auth/forgot",
                base_url="http://issues.test",
            )
        await session.commit()


async def test_an_smtp_outage_during_sign_ups_delays_mail_and_loses_none(
    database_url: str, mailbox: MailCatcher
) -> None:
    # Many sign-ups from one test client: the per-client limit would stop them.
    app = create_app("testing", **app_settings(database_url, mailbox, RATE_LIMIT_ENABLED=False))
    async with app.test_app():
        await _outage_during_sign_ups(app, mailbox)


async def _outage_during_sign_ups(app: Quart, mailbox: MailCatcher) -> None:
    sender = app.extensions["mail_sender"]
    mailbox.stop()
    for n in range(SIGN_UPS):
        response = await sign_up(app.test_client(), f"person{n}@example.com")
        assert response.status_code == 302  # sign-up does not wait for mail

    report = await sender.deliver_pending()
    assert (report.delivered, report.retried, report.failed) == (0, SIGN_UPS, 0)
    assert "cannot reach" in report.errors[0]
    assert (await sender.deliver_pending()).handled == 0  # not due again yet

    mailbox.start()
    await make_retries_due(app)
    report = await sender.deliver_pending()
    assert report.delivered == SIGN_UPS
    assert (await sender.deliver_pending()).handled == 0
    received = sorted(address for mail in mailbox.messages for address in mail.recipients)
    assert received == sorted(f"person{n}@example.com" for n in range(SIGN_UPS))
    assert await statuses(app) == [MailStatus.SENT] * SIGN_UPS


async def test_mail_queued_before_a_restart_is_sent_by_the_next_process(
    database_url: str, mailbox: MailCatcher
) -> None:
    mailbox.stop()
    first = create_app("testing", **app_settings(database_url, mailbox))
    async with first.test_app():
        await queue(first, 5)
        await first.extensions["mail_sender"].deliver_pending()  # fails: SMTP is down
    mailbox.start()
    second = create_app("testing", **app_settings(database_url, mailbox))
    async with second.test_app():
        await make_retries_due(second)
        assert (await second.extensions["mail_sender"].deliver_pending()).delivered == 5
    assert len(mailbox.messages) == 5


async def test_two_workers_sending_at_once_never_send_a_message_twice(
    database_url: str, mailbox: MailCatcher
) -> None:
    workers = [create_app("testing", **app_settings(database_url, mailbox)) for _ in range(2)]
    async with workers[0].test_app(), workers[1].test_app():
        await queue(workers[0], 60)
        reports = await asyncio.gather(
            *(worker.extensions["mail_sender"].deliver_pending() for worker in workers)
        )
    assert sum(report.delivered for report in reports) == 60
    recipients = [address for mail in mailbox.messages for address in mail.recipients]
    assert len(recipients) == len(set(recipients)) == 60


async def test_a_permanent_refusal_is_not_retried(app: Quart, mailbox: MailCatcher) -> None:
    await queue(app, 1, to="ghost@bounce.example")
    await queue(app, 1, to="real@example.com")
    report = await app.extensions["mail_sender"].deliver_pending()
    assert (report.delivered, report.failed) == (1, 1)
    assert await statuses(app) == [MailStatus.FAILED, MailStatus.SENT]


async def test_a_message_that_keeps_failing_is_given_up_after_its_attempts(
    database_url: str, mailbox: MailCatcher
) -> None:
    app = create_app("testing", **app_settings(database_url, mailbox, MAIL_MAX_ATTEMPTS=3))
    mailbox.stop()
    async with app.test_app():
        await queue(app, 1)
        for _ in range(3):
            await make_retries_due(app)
            await app.extensions["mail_sender"].deliver_pending()
        assert await statuses(app) == [MailStatus.FAILED]


def test_retries_back_off_up_to_an_hour() -> None:
    delays = [
        retry_delay(attempt, FIRST_RETRY_SECONDS, LAST_RETRY_SECONDS).total_seconds()
        for attempt in range(1, 12)
    ]
    assert delays[:3] == [30, 60, 120]
    assert delays == sorted(delays)
    assert delays[-1] == 3600


async def test_mail_of_a_rolled_back_change_is_never_sent(app: Quart, mailbox: MailCatcher) -> None:
    async with app.extensions["database"].sessionmaker() as session:
        enqueue_mail(
            session,
            to_address="someone@example.com",
            template="password_changed",
            name="Someone",
            link="http://issues.test/",
            base_url="http://issues.test",
        )
        await session.rollback()
    assert (await app.extensions["mail_sender"].deliver_pending()).handled == 0


async def test_a_display_name_cannot_inject_headers(app: Quart, mailbox: MailCatcher) -> None:
    await queue(app, 1, to="ann@example.com", name="Eve\r\nBcc: victim@example.com")
    assert (await app.extensions["mail_sender"].deliver_pending()).delivered == 1
    [mail] = mailbox.messages
    assert mail.recipients == ["ann@example.com"]
    assert mail.message["Bcc"] is None
    assert "\n" not in mail.to and "\r" not in mail.to
    assert "ann@example.com" in mail.to


async def test_every_message_has_a_plain_and_an_html_part(app: Quart, mailbox: MailCatcher) -> None:
    await queue(app, 1, to="ann@example.com", name="Ann <b>Bold</b>")
    await app.extensions["mail_sender"].deliver_pending()
    [mail] = mailbox.messages
    assert "password of your Issues account was changed" in mail.text
    assert "<p>" in mail.html
    assert mail.message["Message-ID"].startswith("<")


async def test_a_served_app_sends_mail_soon_after_the_commit(
    database_url: str, mailbox: MailCatcher
) -> None:
    app = create_app(
        "testing",
        **app_settings(database_url, mailbox, MAIL_SEND_IN_BACKGROUND=True, MAIL_POLL_SECONDS=60),
    )
    async with app.test_app() as test_app:
        await sign_up(test_app.test_client(), "ann@example.com")
        # The commit wakes the sender: no poll interval (60 s here) to wait for.
        assert await eventually(lambda: mailbox.messages)
    assert [mail.recipients for mail in mailbox.messages] == [["ann@example.com"]]


async def test_development_prints_mail_to_the_log(
    database_url: str, mailbox: MailCatcher, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app("testing", **app_settings(database_url, mailbox, MAIL_BACKEND="log"))
    async with app.test_app():
        await queue(app, 1, to="ann@example.com")
        with caplog.at_level(logging.INFO, logger="issues.mail"):
            assert (await app.extensions["mail_sender"].deliver_pending()).delivered == 1
    assert "mail to ann@example.com" in caplog.text
    assert mailbox.messages == []


async def test_a_message_that_cannot_be_built_fails_alone(app: Quart, mailbox: MailCatcher) -> None:
    await queue(app, 1, to="jörg@example.com")  # no ASCII header can hold this address
    await queue(app, 2)
    report = await app.extensions["mail_sender"].deliver_pending()
    assert (report.delivered, report.failed) == (2, 1)
    assert await statuses(app) == [MailStatus.FAILED, MailStatus.SENT, MailStatus.SENT]
