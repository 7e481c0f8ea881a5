"""Reading the audit log: a person's own events, the admins' filters, the export and its guard
against spreadsheet formulas, and the plain words of each event."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.errors import Invalid
from app.models import AuditEvent, User
from app.services import audit, audit_views
from app.services.audit import AuditAction
from app.services.audit_views import AuditSearch
from app.services.transaction import use_case
from tests.factories import make_user

HOME = audit.Origin("203.0.113.9", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko Firefox/128.0")
OFFICE = audit.Origin("198.51.100.7", "curl/8.5.0")


@use_case
async def write(
    session: AsyncSession,
    action: AuditAction,
    actor: User | None,
    subject: User | None = None,
    origin: audit.Origin = HOME,
    **detail: object,
) -> None:
    audit.record(session, action, actor=actor, subject=subject, origin=origin, **detail)


async def collect(chunks) -> str:
    return "".join([chunk async for chunk in chunks])


async def test_a_person_sees_what_they_did_and_what_was_done_to_them_newest_first(
    session: AsyncSession,
) -> None:
    ann = await make_user(session, email="ann@example.com")
    bob = await make_user(session, email="bob@example.com")
    await write(session, AuditAction.LOGIN_SUCCEEDED, ann, method="password")
    await write(session, AuditAction.LOGIN_SUCCEEDED, bob, method="password")
    await write(session, AuditAction.MEMBER_ADDED, bob, ann, project="WEB", role="member")
    await write(session, AuditAction.LOGIN_FAILED, None, ann)
    page = await audit_views.own_events(session, ann.id)
    assert [e.action for e in page.events] == ["login.failed", "member.added", "login.succeeded"]
    assert page.next_before is None


async def test_own_events_are_paged_by_id_without_gaps_or_repeats(session: AsyncSession) -> None:
    ann = await make_user(session, email="ann@example.com")
    for _ in range(7):
        await write(session, AuditAction.LOGOUT, ann)
    seen, before = [], None
    while True:
        page = await audit_views.own_events(session, ann.id, before_id=before, limit=3)
        seen += [e.id for e in page.events]
        if page.next_before is None:
            break
        before = page.next_before
    assert seen == sorted(seen, reverse=True) and len(set(seen)) == 7


async def searched(session: AsyncSession, **filters: object) -> list[str]:
    page = await audit_views.search_events(session, AuditSearch(**filters))  # type: ignore[arg-type]
    return [f"{e.action}:{e.subject_email}" for e in page.events]


async def test_the_admin_filters_by_person_action_prefix_dates_and_address(
    session: AsyncSession,
) -> None:
    ann = await make_user(session, email="ann@example.com")
    bob = await make_user(session, email="bob@example.com")
    await write(session, AuditAction.LOGIN_SUCCEEDED, ann, method="password")
    await write(session, AuditAction.LOGIN_FAILED, None, bob, origin=OFFICE)
    await write(session, AuditAction.ROLE_CHANGED, ann, bob, project="WEB", role="admin")
    await audit.record_refusal(
        session, AuditAction.LOGIN_FAILED, actor=None, subject_email="ghost@example.com"
    )
    # By person, as actor or as subject, by address or by handle; and an address with no account.
    assert await searched(session, person="bob@example.com") == [
        "role.changed:bob@example.com",
        "login.failed:bob@example.com",
    ]
    assert len(await searched(session, person=ann.handle)) == 2
    assert await searched(session, person="ghost@example.com") == ["login.failed:ghost@example.com"]
    # By action, exact or by prefix.
    assert await searched(session, actions=("role.changed",)) == ["role.changed:bob@example.com"]
    assert len(await searched(session, actions=("login.",))) == 3
    assert await searched(session, actions=("login.succeeded", "role.changed")) == [
        "role.changed:bob@example.com",
        "login.succeeded:ann@example.com",
    ]
    # By address, and by dates (the end date inclusive).
    assert await searched(session, address="198.51.100.7") == ["login.failed:bob@example.com"]
    today = utcnow().date()
    assert len(await searched(session, since=today, until=today)) == 4
    assert await searched(session, until=today - timedelta(days=1)) == []
    await session.execute(
        update(AuditEvent)
        .where(AuditEvent.action == "role.changed")
        .values(at=utcnow() - timedelta(days=10))
    )
    await session.commit()
    assert await searched(
        session, since=today - timedelta(days=11), until=today - timedelta(days=9)
    ) == ["role.changed:bob@example.com"]


@pytest.mark.parametrize(
    ("args", "actions", "field"),
    [
        ({"since": "2026-13-01"}, [], "since"),
        ({"until": "yesterday"}, [], "until"),
        ({"since": "2026-05-02", "until": "2026-05-01"}, [], "until"),
        ({}, ["login.exploded"], "action"),
        ({}, ["nope."], "action"),
        ({"person": "x" * 400}, [], "person"),
        ({"address": "1" * 65}, [], "address"),
    ],
)
def test_bad_filters_are_refused_with_the_field_at_fault(
    args: dict[str, str], actions: list[str], field: str
) -> None:
    with pytest.raises(Invalid) as refused:
        audit_views.parse_search(args, actions)
    assert field in refused.value.field_errors


def test_good_filters_are_read_and_give_back_their_query() -> None:
    search = audit_views.parse_search(
        {"person": " @ann ", "since": "2026-05-01", "address": "203.0.113.9"},
        ["login.", "token.created", "login."],
    )
    assert search == AuditSearch(
        "ann", ("login.", "token.created"), date(2026, 5, 1), None, "203.0.113.9"
    )
    assert search.query_args() == [
        ("person", "ann"),
        ("action", "login."),
        ("action", "token.created"),
        ("since", "2026-05-01"),
        ("address", "203.0.113.9"),
    ]


async def test_the_csv_export_parses_back_and_defuses_formulas(session: AsyncSession) -> None:
    ann = await make_user(session, email="ann@example.com")
    evil = audit.Origin("203.0.113.9", '=HYPERLINK("http://evil.example","x")')
    await write(
        session, AuditAction.TOKEN_CREATED, ann, origin=evil, token_name="+cmd|' /C calc'!A0"
    )
    await write(session, AuditAction.LOGOUT, ann, origin=audit.Origin("-1", "@SUM(1)"))
    await audit.record_refusal(
        session, AuditAction.LOGIN_FAILED, actor=None, subject_email="plain@example.com"
    )
    text = await collect(audit_views.export_csv(session, AuditSearch(), batch=2))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [row["action"] for row in rows] == ["login.failed", "logout", "token.created"]
    assert rows[2]["user_agent"] == '\'=HYPERLINK("http://evil.example","x")'
    assert rows[1]["user_agent"] == "'@SUM(1)" and rows[1]["client_address"] == "'-1"
    assert json.loads(rows[2]["detail"])["token_name"] == "+cmd|' /C calc'!A0"  # JSON starts with {
    assert rows[0]["subject_email"] == "plain@example.com" and rows[0]["actor_id"] == ""
    for row in rows:
        assert not any(cell.startswith(("=", "+", "-", "@")) for cell in row.values())


async def test_the_json_lines_export_keeps_the_filters_and_every_batch(
    session: AsyncSession,
) -> None:
    ann = await make_user(session, email="ann@example.com")
    for _ in range(5):
        await write(session, AuditAction.LOGOUT, ann)
    await write(session, AuditAction.PASSWORD_CHANGED, ann, sessions_ended=1)
    text = await collect(
        audit_views.export_json_lines(session, AuditSearch(actions=("logout",)), batch=2)
    )
    records = [json.loads(line) for line in text.splitlines()]
    assert len(records) == 5 and {r["action"] for r in records} == {"logout"}
    assert [r["id"] for r in records] == sorted((r["id"] for r in records), reverse=True)
    assert (
        records[0]["actor_email"] == "ann@example.com"
        and records[0]["client_address"] == "203.0.113.9"
    )
    everything = await collect(audit_views.export_json_lines(session, AuditSearch(), batch=500))
    assert json.loads(everything.splitlines()[0])["detail"] == {"sessions_ended": 1}


async def test_events_read_in_plain_words(session: AsyncSession) -> None:
    ann = await make_user(session, email="ann@example.com")
    owner = await make_user(session, email="owner@example.com")
    await write(session, AuditAction.LOGIN_SUCCEEDED, ann, method="password")
    await write(
        session, AuditAction.ROLE_CHANGED, owner, ann, origin=OFFICE, project="WEB", role="admin"
    )
    await write(session, AuditAction.TOKEN_CREATED, ann, token_name="{0} {x}", scope="read")
    token, role, login = (await audit_views.own_events(session, ann.id)).events
    assert audit_views.describe_event(login, ann) == (
        "Signed in with a password from 203.0.113.9, Firefox"
    )
    assert audit_views.describe_event(role, ann) == (
        "owner@example.com made you admin of WEB from 198.51.100.7, curl"
    )
    assert audit_views.describe_event(token, ann).startswith("Created the API token “{0} {x}”")
    await write(session, AuditAction.ADMIN_DEACTIVATED, owner, ann, origin=audit.NO_ORIGIN)
    [deactivated] = (await audit_views.own_events(session, ann.id, limit=1)).events
    assert audit_views.describe_event(deactivated, ann) == (
        "owner@example.com deactivated your account"
    )
    assert audit_views.describe_event(deactivated, owner) == (
        "You deactivated ann@example.com's account"
    )


def test_relative_times() -> None:
    now = utcnow()
    assert audit_views.ago(now - timedelta(seconds=5), now) == "just now"
    assert audit_views.ago(now - timedelta(minutes=1), now) == "1 minute ago"
    assert audit_views.ago(now - timedelta(hours=5), now) == "5 hours ago"
    assert audit_views.ago(now - timedelta(days=3, hours=2), now) == "3 days ago"
