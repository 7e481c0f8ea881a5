"""A real SMTP server for tests: aiosmtpd on loopback, keeping what it receives."""

from __future__ import annotations

import email
import email.policy
import re
import socket
import time
from dataclasses import dataclass
from email.message import EmailMessage

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass
class CaughtMail:
    mail_from: str
    recipients: list[str]
    message: EmailMessage

    @property
    def to(self) -> str:
        return str(self.message["To"])

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def text(self) -> str:
        return self.message.get_body(("plain",)).get_content()

    @property
    def html(self) -> str:
        return self.message.get_body(("html",)).get_content()

    def link(self) -> str:
        """The first link in the plain-text body."""
        match = re.search(r"https?://\S+", self.text)
        assert match, f"no link in: {self.text}"
        return match.group(0)


def free_port() -> int:
    # aiosmtpd cannot take port 0: its start() connects to the port it was given.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class MailCatcher:
    def __init__(self) -> None:
        self.port = free_port()
        self.messages: list[CaughtMail] = []
        self._controller: Controller | None = None

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        # Addresses at bounce.example do not exist: a permanent refusal, as a real server gives.
        if address.endswith("@bounce.example"):
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append(CaughtMail(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"

    def start(self) -> None:
        """Start (or restart, on the same port, after an outage)."""
        if self._controller is not None:
            return
        for _ in range(50):
            try:
                controller = Controller(self, hostname="127.0.0.1", port=self.port)
                controller.start()
            except (OSError, RuntimeError):
                time.sleep(0.1)  # the port may linger a moment after a stop
                continue
            self._controller = controller
            return
        raise RuntimeError(f"cannot start the SMTP server on port {self.port}")

    def stop(self) -> None:
        """Stop answering: an SMTP outage."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def to(self, address: str) -> list[CaughtMail]:
        return [caught for caught in self.messages if address in caught.recipients]
