"""Logs: one JSON object per line in production, readable lines elsewhere, the request id on
every line of a request, and no password, token, secret or cookie in any of them."""

from __future__ import annotations

import json
import logging
import re
import secrets
import sys
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable
from quart import Quart

REQUEST_ID_HEADER = "X-Request-ID"
REDACTED = "[redacted]"
# A LogTransport record that shows a development mail on purpose (its links are the point).
DEVELOPMENT_MAIL = "issues_development_mail"

_request_id: ContextVar[str | None] = ContextVar("issues_request_id", default=None)
# An incoming id is kept only if it is a plain token: it ends up in logs and pages.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")

# The names of secrets, not one.
_SECRET_NAMES = (
    r"password|passwd|pwd|secret|token|api[_-]?key|authorization|cookie|signature|signed"  # noqa: S105
    r"|issues_auth|issues_session|csrf|totp|recovery"
)
# Each pattern keeps its first group and replaces the rest of the match.
_SECRET_PATTERNS = [
    # Links that carry a signed token in their path: reset, verification, address change.
    re.compile(r"(/auth/(?:reset|verify|confirm-email)/)[^\s/?#\"'<>]+"),
    # Credentials in a URL: scheme://user:password@host.
    re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@]*:)[^\s@/]+(?=@)"),
    # Authorization schemes with their credentials.
    re.compile(r"(?i)(\b(?:bearer|basic)\s+)[A-Za-z0-9._~+/=-]+"),
    # Signed values (itsdangerous, JWT: three dot-separated base64 parts) wherever they appear:
    # the login and session cookies, reset and verification links.
    re.compile(r"()\b[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{20,}"),
    # API tokens by their prefix, wherever they appear.
    re.compile(r"(\biss_)[A-Za-z0-9_-]+"),
    # Two-factor recovery codes by their shape (four groups of four), wherever they appear.
    re.compile(r"()\b[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}\b"),
    # name=value, name: value, "name": "value" for every name that sounds secret (query
    # strings, form dumps, headers, reprs of dicts).
    re.compile(rf"(?i)((?:{_SECRET_NAMES})[\w-]*[\"']?\s*[:=]\s*[\"']?)[^\s\"'&,;}}]+"),
]


def redact(text: str) -> str:
    """`text` with every secret-looking value replaced by [redacted]."""
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda match: match.group(1) + REDACTED, text)
    return text


def current_request_id() -> str | None:
    """The id of the request being served (None outside a request)."""
    return _request_id.get()


def _request_id_from(headers: list[tuple[bytes, bytes]]) -> str:
    for name, value in headers:
        if name.lower() == REQUEST_ID_HEADER.lower().encode():
            candidate = value.decode("latin-1").strip()
            if _SANE_REQUEST_ID.fullmatch(candidate):
                return candidate
    return secrets.token_hex(8)


class RequestIdMiddleware:
    """Gives each HTTP request an id (the proxy's X-Request-ID if it is a plain token, else a
    new one): set for the request's whole task, so every log line carries it, and returned in
    the answer's X-Request-ID header, so a user's error page and the logs can be matched."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(
        self, scope: dict[str, Any], receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request_id = _request_id_from(scope.get("headers", []))
        token = _request_id.set(request_id)

        async def send_with_id(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if name.lower() != b"x-request-id"
                ]
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            return await self.app(scope, receive, send_with_id)
        finally:
            _request_id.reset(token)


# --- Formatting -------------------------------------------------------------------------------


def _access_fields(record: logging.LogRecord) -> dict[str, Any]:
    """hypercorn's access line as fields (its atoms arrive as the record's mapping args)."""
    atoms = record.args
    if record.name != "hypercorn.access" or not isinstance(atoms, Mapping):
        return {}
    return {
        "client": atoms["h"],
        "method": atoms["m"],
        "path": redact(atoms["U"]),  # never the query string
        "status": atoms["s"],
        "bytes": atoms["b"],
        "duration_ms": round(int(atoms["D"]) / 1000, 1),
        "user_agent": atoms["a"],
        "request_id": atoms["{x-request-id}o"],
    }


class JsonFormatter(logging.Formatter):
    """Production's lines: one JSON object each, secrets redacted."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
            "process": record.process,
        }
        request_id = getattr(record, "request_id", None) or current_request_id()
        if request_id:
            entry["request_id"] = request_id
        entry.update(_access_fields(record))
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack"] = redact(self.formatStack(record.stack_info))
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """Development's lines: readable, with the request id when there is one."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s %(request_tag)s%(message)s")

    def format(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "request_id", None) or current_request_id()
        record.request_tag = f"[{request_id}] " if request_id else ""
        text = super().format(record)
        return text if getattr(record, DEVELOPMENT_MAIL, False) else redact(text)


class _Atoms(dict[str, str]):
    """Like hypercorn's atoms: an absent header reads as "-"."""

    def __missing__(self, key: str) -> str:
        return "-"


class RedactingFilter(logging.Filter):
    """For loggers whose handlers are not ours (hypercorn's, when run without our log
    configuration): the record's message is redacted before any formatter sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, Mapping):
            # hypercorn's access atoms: redacted one by one, so they stay fields.
            record.args = _Atoms({key: redact(str(value)) for key, value in record.args.items()})
        elif not getattr(record, DEVELOPMENT_MAIL, False):
            message = record.getMessage()
            redacted = redact(message)
            if redacted != message:
                record.msg, record.args = redacted, None
        return True


class StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stdout is at the moment (test runners swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stdout
        super().emit(record)


def make_handler(log_format: str, stream: Any = None) -> logging.Handler:
    """A handler with the app's formatter: 'json' or 'text'."""
    handler: logging.Handler = StdoutHandler() if stream is None else logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    return handler


_INSTALLED = "issues_handler"


def configure_logging(app: Quart) -> None:
    """Route the process's logs (ours, Quart's, SQLAlchemy's, hypercorn's) through one handler
    with the configured format. Idempotent: each app made in a process replaces the last one's."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, _INSTALLED, False)]:
        root.removeHandler(handler)
    if app.config["LOG_TO_STDOUT"]:
        handler = make_handler(app.config["LOG_FORMAT"])
        setattr(handler, _INSTALLED, True)
        root.addHandler(handler)
        root.setLevel(app.config["LOG_LEVEL"].upper())
        # Quart's own handler would print every error a second time.
        app.logger.handlers.clear()
    # hypercorn's loggers get handlers of their own from hypercorn (unless hypercorn.toml hands
    # them ours); a filter on the logger redacts whatever those handlers print.
    for name in ("hypercorn.access", "hypercorn.error"):
        hypercorn_logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in hypercorn_logger.filters):
            hypercorn_logger.addFilter(RedactingFilter())
    app.asgi_app = RequestIdMiddleware(app.asgi_app)  # type: ignore[method-assign]
