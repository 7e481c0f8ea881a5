"""GET /api/v1/me/audit: the caller's own security events, newest first, paged like every list."""

from __future__ import annotations

from quart.typing import TestClientProtocol as Client
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import AuditEvent
from app.services import audit
from tests.api.conftest import ApiWorld


async def test_the_caller_reads_their_own_events_and_nobody_elses(
    client: Client, world: ApiWorld
) -> None:
    # The world made two tokens for the member (read-write "tests", read-only "reader").
    response = await client.get("/api/v1/me/audit", headers=world.auth("member"))
    assert response.status_code == 200
    body = await response.get_json()
    assert [item["action"] for item in body["items"]] == ["token.created", "token.created"]
    newest = body["items"][0]
    assert newest["detail"] == {"token_name": "reader", "scope": "read", "expires_in_days": None}
    assert newest["description"] == "Created the API token “reader” (read)"
    assert newest["subject_email"] == "member@example.com"
    assert body["next"] is None and "Link" not in response.headers
    # A read-only token may read it too; others' events never show.
    read = await (
        await client.get(
            "/api/v1/me/audit", headers={"Authorization": f"Bearer {world.read_token}"}
        )
    ).get_json()
    assert len(read["items"]) == 2
    assert all(item["subject_email"] == "member@example.com" for item in read["items"])


async def test_the_events_are_paged_with_a_cursor_and_a_link_header(
    client: Client, world: ApiWorld, session: AsyncSession
) -> None:
    member = world.people["member"]
    for _ in range(4):
        await audit.record_refusal(
            session, audit.AuditAction.LOGIN_FAILED, actor=None, subject=member
        )
    seen: list[int] = []
    url: str | None = "/api/v1/me/audit?limit=4"
    while url:
        response = await client.get(url, headers=world.auth("member"))
        assert response.status_code == 200
        body = await response.get_json()
        seen += [item["id"] for item in body["items"]]
        if body["next"]:
            assert response.headers["Link"] == f'<{body["next"]}>; rel="next"'
        url = body["next"]
    assert len(seen) == 6 and seen == sorted(seen, reverse=True)


async def test_bad_cursors_limits_and_anonymous_callers_are_refused(
    client: Client, world: ApiWorld
) -> None:
    assert (await client.get("/api/v1/me/audit")).status_code == 401
    for query in ("after=garbled!", "limit=0", "limit=101"):
        response = await client.get(f"/api/v1/me/audit?{query}", headers=world.auth("member"))
        assert response.status_code == 400, query
        assert set((await response.get_json())["error"]) == {"code", "message", "field"}


async def test_the_endpoint_is_in_the_openapi_document(client: Client) -> None:
    spec = await (await client.get("/api/v1/openapi.json")).get_json()
    operation = spec["paths"]["/api/v1/me/audit"]["get"]
    assert {parameter["name"] for parameter in operation["parameters"]} == {"after", "limit"}
    assert "200" in operation["responses"]
    reference = await (await client.get("/api/v1/docs")).get_data(as_text=True)
    assert "GET /api/v1/me/audit" in reference


async def test_membership_changes_through_the_api_are_audited_with_the_callers_origin(
    client: Client, world: ApiWorld, session: AsyncSession
) -> None:
    viewer = world.people["viewer"]
    headers = {**world.auth("owner"), "User-Agent": "curl/8.5.0"}
    changed = await client.patch(
        f"/api/v1/projects/WEB/members/{viewer.id}", json={"role": "member"}, headers=headers
    )
    assert changed.status_code == 200
    refused = await client.patch(
        f"/api/v1/projects/WEB/members/{viewer.id}",
        json={"role": "member"},
        headers={**world.auth("member"), "User-Agent": "curl/8.5.0"},
    )
    assert refused.status_code == 403  # a member may not change roles: no row
    removed = await client.delete(f"/api/v1/projects/WEB/members/{viewer.id}", headers=headers)
    assert removed.status_code == 204
    events = list(
        await session.scalars(
            select(AuditEvent)
            .where(AuditEvent.action.in_(["role.changed", "member.removed"]))
            .order_by(AuditEvent.id)
        )
    )
    assert [(e.action, e.actor_id, e.subject_id) for e in events] == [
        ("role.changed", world.people["owner"].id, viewer.id),
        ("member.removed", world.people["owner"].id, viewer.id),
    ]
    assert events[0].detail == {"project": "WEB", "role": "member", "previous_role": "viewer"}
    assert all(e.user_agent == "curl/8.5.0" and e.client_address for e in events)
