"""Reading the audit log: a person's own events, the admins' search, its export (CSV and JSON
Lines, streamed in batches) and the plain words each event is shown in."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, false, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Invalid
from app.models import AuditEvent, User
from app.services.audit import AuditAction

PAGE_SIZE = 50
EXPORT_BATCH = 500
PERSON_MAX = 320
ADDRESS_MAX = 64

# The prefixes offered beside the single actions: "login." finds every login event.
ACTION_PREFIXES = tuple(sorted({action.value.split(".")[0] + "." for action in AuditAction}))
EXPORT_COLUMNS = (
    "id",
    "at",
    "action",
    "actor_id",
    "actor_email",
    "subject_id",
    "subject_email",
    "client_address",
    "user_agent",
    "detail",
)
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class AuditSearch:
    """The admin's filters; empty ones filter nothing."""

    person: str = ""
    actions: tuple[str, ...] = ()
    since: date | None = None
    until: date | None = None  # inclusive
    address: str = ""

    def query_args(self) -> list[tuple[str, str]]:
        """The filters as a query string's pairs (the export links keep them)."""
        pairs = [("person", self.person)] if self.person else []
        pairs += [("action", action) for action in self.actions]
        pairs += [("since", self.since.isoformat())] if self.since else []
        pairs += [("until", self.until.isoformat())] if self.until else []
        pairs += [("address", self.address)] if self.address else []
        return pairs


@dataclass(frozen=True)
class AuditPage:
    events: list[AuditEvent]
    next_before: int | None  # the id to pass as `before_id` for the next (older) page
    users: dict[int, User] = field(default_factory=dict)


def _date(raw: str, name: str, errors: dict[str, str]) -> date | None:
    raw = raw.strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        errors[name] = "Give a date as YYYY-MM-DD."
        return None


def parse_search(args: Mapping[str, str], actions: list[str]) -> AuditSearch:
    """The filters from a form's fields (`actions` is every `action` value sent). Raises
    Invalid, each field's problem in `field_errors`, for a bad date, an unknown action or an
    oversized value."""
    errors: dict[str, str] = {}
    person = args.get("person", "").strip().removeprefix("@")
    if len(person) > PERSON_MAX:
        errors["person"] = f"Use at most {PERSON_MAX} characters."
    address = args.get("address", "").strip()
    if len(address) > ADDRESS_MAX:
        errors["address"] = f"Use at most {ADDRESS_MAX} characters."
    known = {action.value for action in AuditAction} | set(ACTION_PREFIXES)
    chosen = tuple(dict.fromkeys(a.strip() for a in actions if a.strip()))
    if unknown := [a for a in chosen if a not in known]:
        errors["action"] = f"Unknown action: {', '.join(unknown)[:100]}."
    since, until = (
        _date(args.get("since", ""), "since", errors),
        _date(args.get("until", ""), "until", errors),
    )
    if since and until and since > until:
        errors["until"] = "The end date is before the start date."
    if errors:
        raise Invalid("Please correct the marked filters.", errors=errors)
    return AuditSearch(person, chosen, since, until, address)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


async def _criteria(session: AsyncSession, search: AuditSearch) -> list[ColumnElement[bool]]:
    criteria: list[ColumnElement[bool]] = []
    if search.person:
        wanted = search.person.lower()
        ids = list(
            await session.scalars(
                select(User.id).where(or_(User.email == wanted, User.handle == wanted))
            )
        )
        # The copied addresses too: the history of a deleted account, an unknown address.
        criteria.append(
            or_(
                AuditEvent.actor_id.in_(ids) if ids else false(),
                AuditEvent.subject_id.in_(ids) if ids else false(),
                AuditEvent.actor_email == wanted,
                AuditEvent.subject_email == wanted,
            )
        )
    if search.actions:
        exact = [a for a in search.actions if not a.endswith(".")]
        prefixes = [a for a in search.actions if a.endswith(".")]
        criteria.append(
            or_(
                AuditEvent.action.in_(exact) if exact else false(),
                *(AuditEvent.action.startswith(prefix, autoescape=True) for prefix in prefixes),
            )
        )
    if search.since:
        criteria.append(AuditEvent.at >= _midnight(search.since))
    if search.until:
        criteria.append(AuditEvent.at < _midnight(search.until + timedelta(days=1)))
    if search.address:
        criteria.append(AuditEvent.client_address == search.address)
    return criteria


async def _page(
    session: AsyncSession, query: Select[Any], before_id: int | None, limit: int
) -> AuditPage:
    if before_id:
        query = query.where(AuditEvent.id < before_id)
    rows = list(await session.scalars(query.order_by(AuditEvent.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return AuditPage(rows, rows[-1].id if more else None)


async def own_events(
    session: AsyncSession, user_id: int, *, before_id: int | None = None, limit: int = PAGE_SIZE
) -> AuditPage:
    """The events a person did or that concern their account, newest first, `limit` at a
    time; `before_id` is the previous page's `next_before`."""
    query = select(AuditEvent).where(
        or_(AuditEvent.actor_id == user_id, AuditEvent.subject_id == user_id)
    )
    return await _page(session, query, before_id, limit)


async def search_events(
    session: AsyncSession,
    search: AuditSearch,
    *,
    before_id: int | None = None,
    limit: int = PAGE_SIZE,
) -> AuditPage:
    """The admin's search, newest first, paged like `own_events`."""
    query = select(AuditEvent).where(*await _criteria(session, search))
    return await _page(session, query, before_id, limit)


async def _batches(
    session: AsyncSession, search: AuditSearch, batch: int
) -> AsyncIterator[list[dict[str, Any]]]:
    """The search's events as export records, in batches of `batch`, newest first by id: each
    batch a query of its own (keyset), so the export never holds the table nor a long read."""
    criteria = await _criteria(session, search)
    before_id: int | None = None
    while True:
        query = select(AuditEvent).where(*criteria)
        if before_id is not None:
            query = query.where(AuditEvent.id < before_id)
        rows = list(await session.scalars(query.order_by(AuditEvent.id.desc()).limit(batch)))
        records = [export_record(event) for event in rows]
        session.expunge_all()  # the rows already read need not stay in memory
        await session.rollback()  # end the read between batches
        if not records:
            return
        yield records
        if len(records) < batch:
            return
        before_id = records[-1]["id"]


def export_record(event: AuditEvent) -> dict[str, Any]:
    """An event as the export writes it (the JSON Lines object; a CSV row's columns)."""
    return {
        "id": event.id,
        "at": event.at.astimezone(UTC).isoformat(),
        "action": event.action,
        "actor_id": event.actor_id,
        "actor_email": event.actor_email,
        "subject_id": event.subject_id,
        "subject_email": event.subject_email,
        "client_address": event.client_address,
        "user_agent": event.user_agent,
        "detail": event.detail or {},
    }


def neutralise_formula(cell: str) -> str:
    """A cell a spreadsheet would run as a formula, made plain text by a leading apostrophe."""
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


def _csv_line(values: list[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(values)
    return buffer.getvalue()


async def export_csv(
    session: AsyncSession, search: AuditSearch, *, batch: int = EXPORT_BATCH
) -> AsyncIterator[str]:
    """The search as CSV, a header and then one chunk per batch."""
    yield _csv_line(list(EXPORT_COLUMNS))
    async for rows in _batches(session, search, batch):
        chunk = io.StringIO()
        writer = csv.writer(chunk)
        for record in rows:
            record["detail"] = json.dumps(record["detail"], sort_keys=True)
            writer.writerow(
                [
                    neutralise_formula(value) if isinstance(value, str) else value
                    for value in (record[column] for column in EXPORT_COLUMNS)
                ]
            )
        yield chunk.getvalue()


async def export_json_lines(
    session: AsyncSession, search: AuditSearch, *, batch: int = EXPORT_BATCH
) -> AsyncIterator[str]:
    """The search as JSON Lines (one object per event), one chunk per batch."""
    async for rows in _batches(session, search, batch):
        yield "".join(json.dumps(record, sort_keys=True) + "\n" for record in rows)


# --- Plain words ------------------------------------------------------------------------------

_SENTENCES = {
    "login.succeeded": "Signed in {method}",
    "login.failed": "A sign-in failed (wrong email or password)",
    "login.throttled": "A sign-in was refused after too many failures",
    "logout": "Signed out",
    "sessions.ended": "Logged out {count} other session(s)",
    "account.signed_up": "Signed up",
    "email.verified": "Confirmed the email address",
    "email.change_requested": "Asked to change the email address to {new_email}",
    "email.changed": "Changed the email address from {old_email} to {new_email}",
    "password.changed": "Changed the password",
    "password.reset_requested": "Asked for a password reset link",
    "password.reset": "Reset the password (every session and token was ended)",
    "token.created": "Created the API token “{token_name}” ({scope})",
    "token.revoked": "Revoked the API token “{token_name}”",
    "member.added": "{actor} added {subject} to {project} as {role}",
    "member.removed": "{actor} removed {subject} from {project}",
    "role.changed": "{actor} made {subject} {role} of {project}",
    "totp.enabled": "Turned on two-factor sign-in",
    "totp.disabled": "Turned off two-factor sign-in",
    "totp.failed": "A two-factor code was refused",
    "recovery_code.used": "Signed in with a recovery code",
    "recovery_codes.regenerated": "Made new recovery codes",
    "passkey.added": "Added a passkey",
    "passkey.removed": "Removed a passkey",
    "passkey.login": "Signed in with a passkey",
    "passkey.failed": "A passkey sign-in failed",
    "sso.login": "Signed in with single sign-on",
    "sso.linked": "Linked single sign-on to the account",
    "sso.failed": "A single sign-on attempt failed",
    "admin.user_deactivated": "{actor} deactivated {subject_possessive} account",
    "admin.user_reactivated": "{actor} reactivated {subject_possessive} account",
    "admin.admin_granted": "{actor} made {subject} a site admin",
    "admin.admin_revoked": "{actor} took site admin away from {subject}",
    "admin.two_factor_reset": "{actor} reset {subject_possessive} two-factor sign-in",
    "admin.project_transferred": "{actor} transferred {project} to {subject}",
    "admin.mail_retried": "{actor} retried queued mail",
    "admin.webhook_retried": "{actor} retried a webhook delivery",
}
_METHODS = {
    "password": "with a password",
    "signup": "after signing up",
    "password_reset": "after resetting the password",
    "totp": "with a password and a two-factor code",
    "passkey": "with a passkey",
    "sso": "with single sign-on",
    "recovery_code": "with a recovery code",
}
_BROWSERS = (
    ("Edg/", "Edge"),
    ("OPR/", "Opera"),
    ("Firefox/", "Firefox"),
    ("Chrome/", "Chrome"),
    ("Chromium/", "Chromium"),
    ("Safari/", "Safari"),
    ("curl/", "curl"),
    ("python-", "a Python script"),
)


def ago(at: datetime, now: datetime) -> str:
    """How long ago, in the largest whole unit: "just now", "5 minutes ago", "3 days ago"."""
    seconds = int((now - at).total_seconds())
    if seconds < 60:
        return "just now"
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return "just now"


def browser_name(user_agent: str) -> str:
    """A browser's everyday name from its User-Agent ("Firefox"), or the string shortened."""
    for marker, name in _BROWSERS:
        if marker in user_agent:
            return name
    return re.sub(r"\s+", " ", user_agent).strip()[:40]


def describe_event(event: AuditEvent, viewer: User | None = None) -> str:
    """The event in plain words, for the person it concerns: "Signed in with a password from
    203.0.113.9, Firefox"."""
    detail: dict[str, Any] = {key: value for key, value in (event.detail or {}).items()}
    detail["method"] = _METHODS.get(str(detail.get("method", "")), f"({detail.get('method')})")

    def name(user_id: int | None, email: str) -> str:
        if viewer is not None and user_id == viewer.id:
            return "you"
        return email or "someone"

    detail.setdefault("actor", name(event.actor_id, event.actor_email))
    detail.setdefault("subject", name(event.subject_id, event.subject_email))
    subject = detail["subject"]
    detail.setdefault("subject_possessive", "your" if subject == "you" else f"{subject}'s")
    template = _SENTENCES.get(event.action, event.action.replace(".", " ").replace("_", " "))
    try:
        sentence = template.format_map(_Blank(detail))
    except (ValueError, IndexError):  # a stray brace in stored detail
        sentence = event.action
    if sentence.startswith("you "):
        sentence = "You " + sentence[4:]
    where = ", ".join(
        part for part in (event.client_address, browser_name(event.user_agent)) if part
    )
    return f"{sentence} from {where}" if where else sentence


class _Blank(dict):
    """format_map's values, with a blank for a key the event lacks."""

    def __missing__(self, key: str) -> str:
        return ""
