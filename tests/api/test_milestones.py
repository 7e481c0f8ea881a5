"""The milestones' endpoints: created, listed with progress, updated with If-Match, closed after
saying where the open issues go; an issue's milestone and estimate through the issue endpoints."""

from __future__ import annotations

from quart.typing import TestClientProtocol as Client

from tests.api.conftest import ApiWorld
from tests.api.test_endpoints import call

BASE = "/api/v1/projects/WEB/milestones"


async def test_milestones_are_created_listed_updated_with_if_match_and_closed(
    client: Client, world: ApiWorld
) -> None:
    status, made, headers = await call(
        client, world, "POST", BASE, {"title": "1.0", "due_date": "2026-12-31"}, who="member"
    )
    assert status == 201 and made["state"] == "open" and made["version"] == 1
    one = f"{BASE}/{made['id']}"
    assert headers["Location"] == one and headers["ETag"] == '"1"'
    status, refusal, _ = await call(client, world, "POST", BASE, {"title": "1.0"})
    assert status == 400 and refusal["error"]["field"] == "title"
    status, _, _ = await call(client, world, "POST", BASE, {"title": "2.0"}, who="viewer")
    assert status == 403
    _, following, _ = await call(client, world, "POST", BASE, {"title": "1.1"})

    status, planned, _ = await call(
        client,
        world,
        "PATCH",
        "/api/v1/issues/WEB-1",
        {"milestone_id": made["id"], "estimate": 5},
    )
    assert status == 200 and planned["milestone_id"] == made["id"] and planned["estimate"] == 5
    status, listed, _ = await call(client, world, "GET", BASE, who="viewer")
    assert [m["title"] for m in listed["items"]] == ["1.0", "1.1"]
    assert (listed["items"][0]["issues"], listed["items"][0]["points"]) == (1, 5)

    status, changed, headers = await call(
        client, world, "PATCH", one, {"due_date": None}, headers={"If-Match": '"1"'}
    )
    assert status == 200 and changed["due_date"] is None and headers["ETag"] == '"2"'
    status, stale, _ = await call(
        client, world, "PATCH", one, {"title": "One"}, headers={"If-Match": '"1"'}
    )
    assert status == 412 and stale["error"]["code"] == "precondition_failed"
    _, read, _ = await call(client, world, "GET", one)
    assert read["title"] == "1.0"

    status, asked, _ = await call(client, world, "POST", f"{one}/close", {})
    assert status == 400 and asked["error"]["field"] == "move_to"
    status, closed, _ = await call(
        client, world, "POST", f"{one}/close", {"move_to": following["id"]}
    )
    assert status == 200 and closed["state"] == "closed" and closed["issues"] == 0
    _, moved, _ = await call(client, world, "GET", "/api/v1/issues/WEB-1")
    assert moved["milestone_id"] == following["id"]
    status, reopened, _ = await call(client, world, "POST", f"{one}/reopen")
    assert status == 200 and reopened["state"] == "open"


async def test_a_private_projects_milestones_are_hidden_from_outsiders(
    client: Client, world: ApiWorld
) -> None:
    _, made, _ = await call(client, world, "POST", BASE, {"title": "Secret"})
    for method, path, body in (
        ("GET", BASE, None),
        ("GET", f"{BASE}/{made['id']}", None),
        ("PATCH", f"{BASE}/{made['id']}", {"title": "Mine"}),
        ("POST", f"{BASE}/{made['id']}/close", {"move_to": None}),
    ):
        status, answer, _ = await call(client, world, method, path, body, who="outsider")
        assert status == 404 and "Secret" not in str(answer), path
    status, found, _ = await call(
        client, world, "GET", '/api/v1/projects/PUB/issues?q=milestone:"Secret"', who="outsider"
    )
    assert status == 200 and found["items"] == []
    status, _, _ = await call(  # another project's milestone cannot be given to an issue
        client, world, "PATCH", "/api/v1/issues/PUB-1", {"milestone_id": made["id"]}
    )
    assert status == 400
