"""The relations API and the issues' `parent` field: sub-issues made and moved, relations added,
listed and removed, refusals in the error shape, and nothing of a private issue shown to whom
cannot read it (relations, search, activity)."""

from __future__ import annotations

from quart.typing import TestClientProtocol as Client

from tests.api.conftest import ApiWorld
from tests.api.test_endpoints import call


async def test_a_sub_issue_is_made_through_the_parent_field_and_listed_with_progress(
    client: Client, world: ApiWorld
) -> None:
    status, child, _ = await call(
        client, world, "POST", "/api/v1/projects/WEB/issues", {"title": "Copy", "parent": "WEB-1"}
    )
    assert status == 201 and child["parent"] == "WEB-1"
    status, listed, _ = await call(client, world, "GET", "/api/v1/issues/WEB-1/relations")
    assert status == 200
    assert [s["key"] for s in listed["sub_issues"]] == ["WEB-2"]
    assert (listed["sub_issues_done"], listed["parent"], listed["items"]) == (0, None, [])
    status, shown, _ = await call(client, world, "GET", "/api/v1/issues/WEB-2/relations")
    assert shown["parent"]["key"] == "WEB-1"

    # A cycle, the issue itself, another project's issue: 400 with the field, nothing stored.
    for key, body in [
        ("WEB-1", {"parent": "WEB-2"}),
        ("WEB-2", {"parent": "WEB-2"}),
        ("WEB-2", {"parent": "PUB-1"}),
    ]:
        status, refused, _ = await call(client, world, "PATCH", f"/api/v1/issues/{key}", body)
        assert status == 400, body
        assert refused["error"]["field"] == "parent"
    status, cleared, _ = await call(
        client, world, "PATCH", "/api/v1/issues/WEB-2", {"parent": None}
    )
    assert status == 200 and cleared["parent"] is None


async def test_relations_are_added_listed_from_both_ends_and_removed(
    client: Client, world: ApiWorld
) -> None:
    status, made, _ = await call(
        client,
        world,
        "POST",
        "/api/v1/issues/WEB-1/relations",
        {"type": "blocks", "issue": "PUB-1"},
        who="member",
    )
    assert status == 201
    assert (made["type"], made["issue"]["key"]) == ("blocks", "PUB-1")
    _, theirs, _ = await call(client, world, "GET", "/api/v1/issues/PUB-1/relations")
    assert [(r["type"], r["issue"]["key"]) for r in theirs["items"]] == [("blocked_by", "WEB-1")]
    assert theirs["blocked"] is True

    for body in (
        {"type": "blocks", "issue": "PUB-1"},
        {"type": "blocked_by", "issue": "PUB-1"},
        {"type": "relates_to", "issue": "WEB-1"},
        {"type": "parent_of", "issue": "PUB-1"},
    ):
        status, refused, _ = await call(
            client, world, "POST", "/api/v1/issues/WEB-1/relations", body
        )
        assert status == 400, body
        assert refused["error"]["message"]

    path = "/api/v1/issues/PUB-1/relations?type=blocked_by&issue=web-1"
    assert (await call(client, world, "DELETE", path, who="viewer"))[0] == 403
    assert (await call(client, world, "DELETE", path))[0] == 204
    assert (await call(client, world, "DELETE", path))[0] == 404
    _, after, _ = await call(client, world, "GET", "/api/v1/issues/WEB-1/relations")
    assert after["items"] == []


async def test_a_relation_to_a_private_issue_never_shows_its_title_to_an_outsider(
    client: Client, world: ApiWorld
) -> None:
    status, _, _ = await call(
        client,
        world,
        "POST",
        "/api/v1/issues/PUB-1/relations",
        {"type": "blocked_by", "issue": "WEB-1"},
    )
    assert status == 201
    _, mine, _ = await call(client, world, "GET", "/api/v1/issues/PUB-1/relations")
    assert [r["issue"]["title"] for r in mine["items"]] == ["First issue"]

    answers = []
    for path in (
        "/api/v1/issues/PUB-1/relations",
        "/api/v1/issues/PUB-1/activity",
        "/api/v1/projects/PUB/activity",
        "/api/v1/issues/PUB-1",
        "/api/v1/projects/PUB/issues?q=is:blocked",
    ):
        response = await client.get(path, headers=world.auth("outsider"))
        assert response.status_code == 200, path
        answers.append(await response.get_data(as_text=True))
    listed = await (
        await client.get("/api/v1/issues/PUB-1/relations", headers=world.auth("outsider"))
    ).get_json()
    assert listed["items"] == [] and listed["blocked"] is False
    for text in answers:
        assert "First issue" not in text and "WEB-1" not in text
    # The search counts only blockers one may read: the outsider sees no blocked issue.
    assert '"items":[]' in answers[-1].replace(" ", "")
    _, found, _ = await call(client, world, "GET", "/api/v1/projects/PUB/issues?q=is:blocked")
    assert [issue["key"] for issue in found["items"]] == ["PUB-1"]
    # Nor can the outsider relate anything to it, or learn that it exists.
    status, _, _ = await call(
        client,
        world,
        "POST",
        "/api/v1/issues/PUB-1/relations",
        {"type": "relates_to", "issue": "WEB-1"},
        who="outsider",
    )
    assert status == 403
