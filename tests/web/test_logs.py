"""Logs: production's JSON lines carry the request id and never a password, token or cookie."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit

import pytest
import pytest_asyncio
from quart import Quart

from app import create_app
from app.web.logs import make_handler, redact
from tests.conftest import app_settings
from tests.mailcatcher import MailCatcher
from tests.pages import PASSWORD, log_in, sign_up, submit

NEW_PASSWORD = "a brand new passphrase"


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """Everything logged during the test, through production's handler, as it would print."""
    buffer = io.StringIO()
    handler = make_handler("json", stream=buffer)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield buffer
    root.removeHandler(handler)
    root.setLevel(level)


@pytest_asyncio.fixture
async def chatty_app(database_url: str, mailbox: MailCatcher) -> AsyncIterator[Quart]:
    # DATABASE_ECHO logs every statement with its parameters: the outbox row with the reset
    # link, the login cookie's session row... the worst case for leaks.
    app = create_app("testing", **app_settings(database_url, mailbox, DATABASE_ECHO=True))
    async with app.test_app() as test_app:
        yield test_app.app
    logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)


async def test_a_login_and_a_password_reset_leave_no_secret_in_the_logs(
    chatty_app: Quart, mailbox: MailCatcher, json_log: io.StringIO
) -> None:
    client = chatty_app.test_client()
    await sign_up(client, "ann@example.com")
    await submit(client, "/auth/logout")
    assert (await log_in(client, "ann@example.com")).status_code == 302
    cookies = [cookie.value for cookie in client.cookie_jar]
    await submit(client, "/auth/forgot", {"email": "ann@example.com"})
    await chatty_app.extensions["mail_sender"].deliver_pending()
    [reset_mail] = [m for m in mailbox.to("ann@example.com") if "Reset" in m.subject]
    path = urlsplit(reset_mail.link()).path
    token = path.rsplit("/", 1)[1]
    # A careless line that names the secrets outright is redacted as well.
    logging.getLogger("issues.test").info("visiting %s with %s", reset_mail.link(), cookies)
    assert (await submit(client, path, {"password": NEW_PASSWORD})).status_code == 302

    lines = json_log.getvalue().splitlines()
    assert len(lines) > 20  # the echo did log the statements
    assert all(json.loads(line)["message"] is not None for line in lines)  # JSON, each one
    text = json_log.getvalue()
    for secret in (PASSWORD, NEW_PASSWORD, token, *cookies):
        assert secret not in text
    assert "/auth/reset/[redacted]" in text


async def test_log_lines_of_a_request_carry_its_id(app: Quart, client, json_log) -> None:
    @app.get("/test-log")
    async def log_something() -> str:
        logging.getLogger("issues.test").warning("something to see")
        return "ok"

    response = await client.get("/test-log", headers={"X-Request-ID": "trace-42abc"})
    [record] = [
        json.loads(line) for line in json_log.getvalue().splitlines() if "something to see" in line
    ]
    assert record["request_id"] == "trace-42abc" == response.headers["X-Request-ID"]
    assert record["level"] == "warning" and record["logger"] == "issues.test"


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ("GET /auth/reset/eyJhbGciOi.abc-def_1 1.1", "eyJhbGciOi.abc-def_1"),
        ("GET /auth/verify/Zm9vYmFy.sig 1.1", "Zm9vYmFy.sig"),
        ("login with password=hunter2hunter2", "hunter2hunter2"),
        ("{'password': 'hunter2hunter2', 'email': 'a@b.c'}", "hunter2hunter2"),
        ("Authorization: Bearer iss_abcdefghijkl", "abcdefghijkl"),
        ("Cookie: issues_auth=s3cr3tc00kie; issues_session=0ther", "s3cr3tc00kie"),
        ("postgresql://issues:pa55word@db/issues", "pa55word"),
        ("/p/WEB?q=x&token=abcdef123456", "abcdef123456"),
        ("SECRET_KEY=0123456789abcdef0123", "0123456789abcdef0123"),
        ("otpauth://totp/Issues:a?secret=JBSWY3DPEHPK3PXP&issuer=Issues", "JBSWY3DPEHPK3PXP"),
        ("{'recovery_code': 'kx57-vv56-vhuk-9kat'}", "kx57-vv56-vhuk-9kat"),
        ("used kx57-vv56-vhuk-9kat to log in", "kx57-vv56-vhuk-9kat"),
        ("totp_secret: JBSWY3DPEHPK3PXP", "JBSWY3DPEHPK3PXP"),
    ],
)
def test_redaction_hides_the_secret_and_keeps_the_rest(line: str, secret: str) -> None:
    redacted = redact(line)
    assert secret not in redacted
    assert "[redacted]" in redacted
