"""Admin commands, run as an admin would: `quart --app app ...` in a shell."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from quart import Quart
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.models import Activity, MailStatus, OutboxMessage, User
from app.outbound.mail import enqueue_mail
from app.services import comments
from tests.factories import make_issue, make_project, make_user
from tests.pages import log_in

PROJECT_ROOT = Path(__file__).resolve().parents[2]


async def run_quart(
    database_url: str, *args: str, stdin: str = "", **environment: str
) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "quart",
        "--app",
        "app",
        *args,
        cwd=PROJECT_ROOT,
        env={
            **os.environ,
            "ISSUES_CONFIG": "testing",
            "DATABASE_URL": database_url,
            **environment,
        },
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(stdin.encode()), 60)
    return process.returncode, output.decode()


async def test_create_admin_prompts_for_the_password_and_the_admin_can_log_in(
    app: Quart, client, database_url: str
) -> None:
    code, output = await run_quart(
        database_url,
        "create-admin",
        "Root@Example.com",
        "--name",
        "Root",
        stdin="a long admin passphrase\na long admin passphrase\n",
    )
    assert code == 0, output
    assert "root@example.com is a site administrator" in output
    async with app.extensions["database"].sessionmaker() as session:
        admin = await session.scalar(select(User).where(User.email == "root@example.com"))
    assert admin.is_admin and admin.email_verified_at is not None
    assert (await log_in(client, "root@example.com", "a long admin passphrase")).status_code == 302


async def test_create_admin_refuses_a_weak_password(database_url: str) -> None:
    code, output = await run_quart(
        database_url, "create-admin", "root@example.com", stdin="short\nshort\n"
    )
    assert code != 0
    assert "at least 10 characters" in output


async def test_seed_demo_fills_an_empty_database_and_refuses_a_used_one(
    app: Quart, client, database_url: str
) -> None:
    code, output = await run_quart(database_url, "seed-demo", "--issues-per-project", "4")
    assert code == 0, output
    assert "Created 19 issues" in output  # and the planning demo's parent and sub-issues
    assert (await log_in(client, "ada@example.com", "demo password 2026")).status_code == 302
    page = await (await client.get("/p/WEB?q=sort:number-asc")).get_data(as_text=True)
    assert "WEB-1" in page
    parent = await (await client.get("/WEB-5")).get_data(as_text=True)
    assert "2 of 5 done" in parent and 'data-type="blocked_by"' in parent
    milestones = await (await client.get("/p/WEB/milestones")).get_data(as_text=True)
    assert "1.0" in milestones and "1.1" in milestones  # with history: see test_milestones
    issue_page = await (await client.get("/WEB-1")).get_data(as_text=True)
    assert "screenshot.png" in issue_page and "server.log" in issue_page
    assert '<img src="/attachments/' in issue_page  # the pasted image, drawn in a comment
    code, output = await run_quart(database_url, "seed-demo")
    assert code != 0 and "fills only an empty one" in output


async def queue_mail(session: AsyncSession, to_address: str, status: MailStatus) -> int:
    message = enqueue_mail(
        session,
        to_address=to_address,
        template="password_changed",
        name="Ann",
        link="x",
        base_url="x",
    )
    message.status, message.attempts = status.value, 8 if status is MailStatus.FAILED else 0
    message.last_error = "550 no such mailbox" if status is MailStatus.FAILED else ""
    await session.commit()
    return message.id


async def test_mail_pending_lists_waiting_and_failed_mail_and_retry_sends_it_again(
    app: Quart, session: AsyncSession, database_url: str, mailbox
) -> None:
    failed = await queue_mail(session, "gone@example.com", MailStatus.FAILED)
    waiting = await queue_mail(session, "later@example.com", MailStatus.PENDING)
    sent = await queue_mail(session, "done@example.com", MailStatus.SENT)

    code, output = await run_quart(database_url, "mail", "pending")
    assert code == 0, output
    assert "gone@example.com" in output and "550 no such mailbox" in output
    assert "later@example.com" in output and "done@example.com" not in output
    assert "2 message(s) pending or failed" in output

    code, output = await run_quart(database_url, "mail", "retry")
    assert code != 0 and "--all" in output
    code, output = await run_quart(database_url, "mail", "retry", str(failed), str(sent))
    assert code == 0, output
    assert "1 message(s) will be sent again" in output
    session.expire_all()
    retried = await session.get(OutboxMessage, failed)
    assert (retried.status, retried.attempts) == (MailStatus.PENDING.value, 0)
    assert (await session.get(OutboxMessage, sent)).status == MailStatus.SENT.value

    # Delivered for real once retried: the SMTP server gets both waiting messages.
    report = await app.extensions["mail_sender"].deliver_pending()
    assert report.delivered == 2
    assert {address for mail in mailbox.messages for address in mail.recipients} == {
        "gone@example.com",
        "later@example.com",
    }
    assert waiting != failed


async def test_mail_retry_all_takes_every_failed_message(
    session: AsyncSession, database_url: str
) -> None:
    first = await queue_mail(session, "a@example.com", MailStatus.FAILED)
    second = await queue_mail(session, "b@example.com", MailStatus.FAILED)
    code, output = await run_quart(database_url, "mail", "retry", "--all")
    assert code == 0 and "2 message(s) will be sent again" in output
    session.expire_all()
    for message_id in (first, second):
        assert (await session.get(OutboxMessage, message_id)).status == MailStatus.PENDING.value


async def test_prune_activity_deletes_only_what_is_older_than_the_window(
    session: AsyncSession, database_url: str
) -> None:
    owner = await make_user(session)
    project = await make_project(session, owner)
    issue = await make_issue(session, owner, project)
    await comments.add_comment(session, owner, issue.id, "recent")
    total = await session.scalar(select(func.count()).select_from(Activity))
    await session.execute(
        update(Activity).where(Activity.seq == 1).values(created_at=utcnow() - timedelta(days=45))
    )
    await session.commit()

    code, output = await run_quart(database_url, "prune-activity")
    assert code != 0 and "--older-than" in output
    code, output = await run_quart(database_url, "prune-activity", "--older-than", "30")
    assert code == 0, output
    assert "Deleted 1 activity rows older than 30 days" in output
    assert await session.scalar(select(func.count()).select_from(Activity)) == total - 1


GOOD_SECRET = "k" * 48


async def test_check_lists_every_unsafe_production_setting_and_fails() -> None:
    code, output = await run_quart(
        "sqlite:///instance/whatever.db",
        "check",
        ISSUES_CONFIG="production",
        SECRET_KEY="tiny-Xq7",
        BASE_URL="http://issues.example.com",
        QUART_AUTH_COOKIE_SECURE="false",
        MAIL_BACKEND="log",
        DATABASE_ECHO="true",
        WEBAUTHN_RP_ID="evil.example",
    )
    assert code == 1, output
    for key in (
        "WEBAUTHN_RP_ID",
        "SECRET_KEY",
        "DATABASE_URL",
        "BASE_URL",
        "QUART_AUTH_COOKIE_SECURE",
        "MAIL_BACKEND",
        "DATABASE_ECHO",
    ):
        assert f"unsafe: {key}:" in output, key
    assert "Traceback" not in output
    assert "tiny-Xq7" not in output  # it says what is wrong, never the secret itself


async def test_check_says_how_to_fix_a_schema_behind_the_code(tmp_path) -> None:
    code, output = await run_quart(f"sqlite:///{tmp_path / 'empty.db'}", "check")
    assert code == 1
    assert "run `alembic upgrade head`" in output


@pytest.mark.postgresql_only  # production runs on PostgreSQL; SQLite is reported as unsafe
async def test_check_passes_a_sound_production_configuration(database_url: str) -> None:
    code, output = await run_quart(
        database_url,
        "check",
        ISSUES_CONFIG="production",
        SECRET_KEY=GOOD_SECRET,
        BASE_URL="https://issues.example.com",
        MAIL_BACKEND="smtp",
        MAIL_SENDER="Issues <issues@example.com>",
        TRUST_PROXY_COUNT="1",
        QUART_AUTH_COOKIE_SECURE="true",
        DATABASE_ECHO="false",
        LOG_FORMAT="json",
    )
    assert code == 0, output
    assert "configuration production: 0 unsafe, 0 warning(s)" in output


async def test_webhooks_pending_and_retry_take_failed_deliveries(
    session: AsyncSession, database_url: str
) -> None:
    from app.models import WebhookDelivery
    from app.outbound.webhooks import TargetPolicy
    from app.services import project_webhooks

    owner = await make_user(session)
    project = await make_project(session, owner)
    await project_webhooks.create_webhook(
        session,
        owner,
        project.id,
        url="http://127.0.0.1:9/hook",
        events=("*",),
        policy=TargetPolicy(allow_private=True),
    )
    await make_issue(session, owner, project)  # queues one delivery
    delivery = await session.scalar(select(WebhookDelivery))
    delivery.status, delivery.attempts, delivery.last_error = "failed", 8, "answered 503"
    delivery_id = delivery.id
    await session.commit()

    code, output = await run_quart(database_url, "webhooks", "pending")
    assert code == 0, output
    assert "issue.created" in output and "answered 503" in output
    assert "1 delivery(s) pending or failed" in output
    code, output = await run_quart(database_url, "webhooks", "retry", "--all")
    assert code == 0 and "1 delivery(s) will be sent again" in output, output
    session.expire_all()
    retried = await session.get(WebhookDelivery, delivery_id)
    assert (retried.status, retried.attempts) == ("pending", 0)
