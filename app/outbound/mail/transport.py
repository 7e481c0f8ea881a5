"""How a message leaves: over SMTP with aiosmtplib, or into the log in development."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Literal, Protocol

import aiosmtplib

from app.web.logs import DEVELOPMENT_MAIL

log = logging.getLogger("issues.mail")


@dataclass(frozen=True)
class Outcome:
    """What became of one message: sent, worth retrying, or refused for good."""

    result: Literal["sent", "retry", "failed"]
    error: str = ""


class Transport(Protocol):
    async def send_all(self, messages: list[EmailMessage]) -> list[Outcome]: ...


class LogTransport:
    """Development's transport: each message goes to the log, so no SMTP server is needed."""

    async def send_all(self, messages: list[EmailMessage]) -> list[Outcome]:
        for message in messages:
            body = message.get_body(("plain",))
            log.info(
                "mail to %s: %s\n%s",
                message["To"],
                message["Subject"],
                body.get_content() if body else "",
                # Development's mail is printed so that its links can be followed: the log
                # formatter leaves it whole (production refuses MAIL_BACKEND=log).
                extra={DEVELOPMENT_MAIL: True},
            )
        return [Outcome("sent") for _ in messages]


class SmtpTransport:
    """Sends a batch over one SMTP connection. 5xx answers are permanent failures; everything
    else (no connection, timeouts, 4xx) is worth another attempt later."""

    def __init__(
        self,
        hostname: str,
        port: int,
        *,
        username: str = "",
        password: str = "",
        use_tls: bool = False,
        timeout: float = 10,
    ) -> None:
        self.hostname, self.port = hostname, port
        self.username, self.password = username, password
        self.use_tls, self.timeout = use_tls, timeout

    async def send_all(self, messages: list[EmailMessage]) -> list[Outcome]:
        client = aiosmtplib.SMTP(
            hostname=self.hostname, port=self.port, use_tls=self.use_tls, timeout=self.timeout
        )
        try:
            await client.connect()
            if self.username:
                await client.login(self.username, self.password)
        except (aiosmtplib.SMTPException, OSError) as error:
            return [Outcome("retry", f"cannot reach {self.hostname}:{self.port}: {error}")]
        outcomes: list[Outcome] = []
        try:
            for message in messages:
                outcomes.append(await self._send_one(client, message))
        finally:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await client.quit()
        return outcomes

    @staticmethod
    async def _send_one(client: aiosmtplib.SMTP, message: EmailMessage) -> Outcome:
        try:
            await client.send_message(message)
        except aiosmtplib.SMTPRecipientsRefused as error:
            permanent = all(refusal.code >= 500 for refusal in error.recipients)
            return Outcome("failed" if permanent else "retry", str(error))
        except aiosmtplib.SMTPResponseException as error:
            return Outcome("failed" if error.code >= 500 else "retry", str(error))
        except (aiosmtplib.SMTPException, OSError) as error:
            return Outcome("retry", str(error))
        return Outcome("sent")


def transport_from_config(config: Mapping[str, Any]) -> Transport:
    if config["MAIL_BACKEND"] == "log":
        return LogTransport()
    return SmtpTransport(
        config["MAIL_HOST"],
        config["MAIL_PORT"],
        username=config["MAIL_USERNAME"],
        password=config["MAIL_PASSWORD"],
        use_tls=config["MAIL_USE_TLS"],
        timeout=config["MAIL_TIMEOUT"],
    )
