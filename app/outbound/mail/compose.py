"""Rendering a message from its pair of templates under templates/email/."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

SUBJECTS = {
    "verify_email": "Confirm your email address for Issues",
    "change_email": "Confirm your new email address for Issues",
    "reset_password": "Reset your Issues password",
    "password_changed": "Your Issues password was changed",
    "watch_digest": "Updates on issues you watch",
}

_environment = Environment(
    loader=PackageLoader("app", "templates/email"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class RenderedMail:
    subject: str
    text: str
    html: str


def render_mail(template: str, **context: Any) -> RenderedMail:
    """The subject and the plain-text and HTML bodies of one message."""
    return RenderedMail(
        subject=SUBJECTS[template],
        text=_environment.get_template(f"{template}.txt").render(**context),
        html=_environment.get_template(f"{template}.html").render(**context),
    )


def header_safe(value: str) -> str:
    """A value fit for a mail header: no line breaks or other control characters."""
    return _CONTROL_CHARACTERS.sub(" ", value).strip()
