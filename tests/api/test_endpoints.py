"""Every endpoint of the API doing its job, through the same services as the pages."""

from __future__ import annotations

from typing import Any

from quart import Quart
from quart.typing import TestClientProtocol as Client
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Activity, Comment, Issue, Label
from app.services import activity, boards, issue_views, issues, projects
from app.services.issues import IssueChanges
from tests.api.conftest import ApiWorld


async def call(
    client: Client,
    world: ApiWorld,
    method: str,
    path: str,
    body: Any = None,
    *,
    who: str = "owner",
    headers: dict[str, str] | None = None,
) -> tuple[int, Any, Any]:
    response = await client.open(
        path, method=method, json=body, headers={**world.auth(who), **(headers or {})}
    )
    data = await response.get_json() if response.status_code != 204 else None
    return response.status_code, data, response.headers


async def fresh(session: AsyncSession) -> None:
    """Forget what this session read before the API's changes (its snapshot and objects)."""
    await session.rollback()
    session.expire_all()


async def status_ids(session: AsyncSession, world: ApiWorld) -> list[int]:
    return [status.id for status in await projects.workflow(session, world.project.id)]


# --- The caller and projects ------------------------------------------------------------------


async def test_me_says_who_calls_and_how(client: Client, world: ApiWorld) -> None:
    status, me, _ = await call(client, world, "GET", "/api/v1/me", who="member")
    assert status == 200
    assert (me["email"], me["auth"], me["token_scope"]) == ("member@example.com", "token", "write")


async def test_projects_are_listed_created_read_and_updated(
    client: Client, world: ApiWorld
) -> None:
    status, page, _ = await call(client, world, "GET", "/api/v1/projects", who="outsider")
    assert status == 200 and [p["key"] for p in page["items"]] == ["PUB"]

    status, made, headers = await call(
        client, world, "POST", "/api/v1/projects", {"key": "api", "name": "Via the API"}
    )
    assert status == 201 and made["key"] == "API" and headers["Location"] == "/api/v1/projects/API"
    status, _, _ = await call(
        client, world, "POST", "/api/v1/projects", {"key": "API", "name": "Again"}
    )
    assert status == 409

    status, changed, _ = await call(
        client, world, "PATCH", "/api/v1/projects/API", {"description": "Hello", "archived": True}
    )
    assert status == 200
    assert (changed["name"], changed["description"], changed["archived"]) == (
        "Via the API",
        "Hello",
        True,
    )
    status, read, _ = await call(client, world, "GET", "/api/v1/projects/api")
    assert status == 200 and read == changed


async def test_a_refused_project_update_changes_nothing_and_an_echo_records_nothing(
    client: Client, world: ApiWorld, session: AsyncSession
) -> None:
    path = "/api/v1/projects/WEB"
    status, _, _ = await call(client, world, "PATCH", path, {"archived": True})
    assert status == 200
    # Brought back and renamed to nothing: refused whole, so it stays archived.
    status, refusal, _ = await call(client, world, "PATCH", path, {"archived": False, "name": ""})
    assert status == 400 and refusal["error"]["field"] == "name"
    status, read, _ = await call(client, world, "GET", path)
    assert read["archived"] is True
    await fresh(session)
    events = select(func.count()).select_from(Activity).where(Activity.kind.like("project.%"))
    before = await session.scalar(events)
    # A client that sends back what it read (archived and all) changes nothing: no event.
    status, same, _ = await call(client, world, "PATCH", path, {
        "name": read["name"], "description": read["description"],
        "is_public": read["is_public"], "archived": True,
    })  # fmt: skip
    assert status == 200 and same == read
    await fresh(session)
    assert await session.scalar(events) == before


async def test_project_lists_page_with_a_next_link(client: Client, world: ApiWorld) -> None:
    seen: list[str] = []
    url: str | None = "/api/v1/projects?limit=1"
    while url:
        status, page, headers = await call(client, world, "GET", url)
        assert status == 200
        seen += [project["key"] for project in page["items"]]
        url = page["next"]
        if url:
            assert headers["Link"] == f'<{url}>; rel="next"'
    assert seen == ["WEB", "PUB"]
    status, refusal, _ = await call(client, world, "GET", "/api/v1/projects?after=garbage!")
    assert status == 400 and refusal["error"]["field"] == "after"


async def test_members_are_added_changed_and_removed(client: Client, world: ApiWorld) -> None:
    outsider = world.people["outsider"]
    base = "/api/v1/projects/WEB/members"
    status, added, _ = await call(
        client, world, "POST", base, {"email": "outsider@example.com", "role": "viewer"}
    )
    assert status == 201 and added["role"] == "viewer"
    status, changed, _ = await call(
        client, world, "PATCH", f"{base}/{outsider.id}", {"role": "member"}
    )
    assert status == 200 and changed == {**added, "role": "member"}
    status, _, _ = await call(client, world, "DELETE", f"{base}/{outsider.id}")
    assert status == 204
    status, listed, _ = await call(client, world, "GET", base)
    assert outsider.id not in [member["user"]["id"] for member in listed["items"]]
    status, refusal, _ = await call(client, world, "PATCH", f"{base}/{outsider.id}", {"role": "x"})
    assert status == 400 and refusal["error"]["field"] == "role"


async def test_labels_and_statuses(client: Client, world: ApiWorld, session: AsyncSession) -> None:
    base = "/api/v1/projects/WEB/labels"
    status, label, _ = await call(client, world, "POST", base, {"name": "bug", "color": "#DC2626"})
    assert status == 201 and label["color"] == "#dc2626"
    status, renamed, _ = await call(
        client, world, "PATCH", f"{base}/{label['id']}", {"name": "defect", "color": "#dc2626"}
    )
    assert status == 200 and renamed["name"] == "defect"
    status, refusal, _ = await call(client, world, "POST", base, {"name": "x", "color": "red"})
    assert status == 400 and refusal["error"] == {
        "code": "invalid",
        "message": "A colour is written like #3b82f6.",
        "field": "color",
    }
    status, _, _ = await call(client, world, "DELETE", f"{base}/{label['id']}")
    await fresh(session)
    assert status == 204 and await session.get(Label, label["id"]) is None
    status, columns, _ = await call(client, world, "GET", "/api/v1/projects/WEB/statuses")
    assert [c["name"] for c in columns["items"]][:2] == ["Backlog", "To do"]


# --- Issues -----------------------------------------------------------------------------------


async def test_issues_are_created_read_by_key_and_searched(
    client: Client, world: ApiWorld, session: AsyncSession
) -> None:
    todo = (await status_ids(session, world))[1]
    status, made, headers = await call(
        client,
        world,
        "POST",
        "/api/v1/projects/WEB/issues",
        {
            "title": "Login fails",
            "type": "bug",
            "priority": "high",
            "status_id": todo,
            "assignee_id": world.people["member"].id,
            "due_date": "2027-01-31",
        },
    )
    assert status == 201
    assert (made["key"], made["status"]["name"], made["assignee"]["handle"]) == (
        "WEB-2",
        "To do",
        world.people["member"].handle,
    )
    assert headers["Location"] == "/api/v1/issues/WEB-2" and headers["ETag"] == '"1"'

    status, read, headers = await call(client, world, "GET", "/api/v1/issues/web-2")
    assert status == 200 and read == made and headers["ETag"] == '"1"'

    status, found, _ = await call(
        client, world, "GET", "/api/v1/projects/WEB/issues?q=priority:high%20type:bug"
    )
    assert [issue["key"] for issue in found["items"]] == ["WEB-2"]
    status, refusal, _ = await call(
        client, world, "GET", "/api/v1/projects/WEB/issues?q=colour:red"
    )
    assert status == 400 and refusal["error"]["field"] == "q"


async def test_issue_lists_page_by_cursor(
    client: Client, world: ApiWorld, session: AsyncSession
) -> None:
    for number in range(4):
        await issues.create_issue(
            session, world.people["owner"], world.project.id, title=f"{number}"
        )
    url: str | None = "/api/v1/projects/WEB/issues?q=sort:number-asc&limit=2"
    keys: list[str] = []
    while url:
        status, page, _ = await call(client, world, "GET", url)
        assert status == 200
        keys += [issue["key"] for issue in page["items"]]
        url = page["next"]
    assert keys == ["WEB-1", "WEB-2", "WEB-3", "WEB-4", "WEB-5"]


async def test_an_update_writes_the_same_activity_as_the_page(
    client: Client, world: ApiWorld, session: AsyncSession
) -> None:
    seq_before = (await activity.activity_since(session, world.project.id, 0))[-1].seq
    status, updated, headers = await call(
        client,
        world,
        "PATCH",
        "/api/v1/issues/WEB-1",
        {"title": "Renamed", "priority": "urgent", "assignee_id": world.people["admin"].id},
    )
    assert status == 200 and headers["ETag"] == '"2"' and updated["version"] == 2
    await fresh(session)  # end the read snapshot taken before the API's change
    [row] = await activity.activity_since(session, world.project.id, seq_before)
    assert (row.kind, row.issue_id, row.actor_id) == (
        "issue.updated",
        world.issue.id,
        world.people["owner"].id,
    )
    assert row.payload["changes"]["title"] == ["First issue", "Renamed"]
    assert row.payload["changes"]["assignee"] == ["", world.people["admin"].display_name]

    # The log as the API serves it, for a client that polls with after=<seq>.
    status, log, _ = await call(
        client, world, "GET", f"/api/v1/projects/WEB/activity?after={seq_before}"
    )
    assert [(item["seq"], item["kind"]) for item in log["items"]] == [(row.seq, "issue.updated")]
    assert log["last_seq"] == row.seq and log["next"] is None
    status, issue_log, _ = await call(client, world, "GET", "/api/v1/issues/WEB-1/activity")
    assert [item["kind"] for item in issue_log["items"]] == ["issue.created", "issue.updated"]

    # Clearing with null, leaving out untouched fields.
    status, cleared, _ = await call(
        client, world, "PATCH", "/api/v1/issues/WEB-1", {"assignee_id": None}
    )
    assert cleared["assignee"] is None and cleared["priority"] == "urgent"


async def test_if_match_on_a_stale_version_answers_412_with_the_current_issue(
    client: Client, world: ApiWorld, session: AsyncSession
) -> None:
    # Someone else edits on the page: the version moves to 2.
    await issues.update_issue(
        session,
        world.people["member"],
        world.issue.id,
        IssueChanges(title="Changed on the page"),
        expected_version=None,
    )
    status, stale, headers = await call(
        client,
        world,
        "PATCH",
        "/api/v1/issues/WEB-1",
        {"title": "Mine"},
        headers={"If-Match": '"1"'},
    )
    assert status == 412 and headers["ETag"] == '"2"'
    assert stale["error"]["code"] == "precondition_failed"
    assert "changed title from First issue to Changed on the page" in stale["error"]["message"]
    assert stale["issue"]["title"] == "Changed on the page" and stale["issue"]["version"] == 2
    await fresh(session)
    owner = world.people["owner"]
    assert (await issue_views.get_issue_by_id(session, owner, world.issue.id)).title != "Mine"

    status, current, headers = await call(
        client,
        world,
        "PATCH",
        "/api/v1/issues/WEB-1",
        {"title": "Mine"},
        headers={"If-Match": '"2"'},
    )
    assert status == 200 and current["title"] == "Mine" and headers["ETag"] == '"3"'
    # A weak tag counts too; a tag that is no version matches none.
    status, _, _ = await call(
        client,
        world,
        "PATCH",
        "/api/v1/issues/WEB-1",
        {"title": "W"},
        headers={"If-Match": 'W/"3"'},
    )
    assert status == 200
    status, _, _ = await call(
        client, world, "PATCH", "/api/v1/issues/WEB-1", {"title": "X"}, headers={"If-Match": '"x"'}
    )
    assert status == 412
    # Without If-Match the change applies to whatever is current.
    status, last, _ = await call(client, world, "PATCH", "/api/v1/issues/WEB-1", {"title": "Y"})
    assert status == 200 and last["version"] == 5


async def test_moving_a_card_and_bulk_updates(
    client: Client, world: ApiWorld, session: AsyncSession
) -> None:
    done = (await status_ids(session, world))[-1]
    second = await issues.create_issue(session, world.people["owner"], world.project.id, title="2")
    status, moved, _ = await call(
        client, world, "POST", "/api/v1/issues/WEB-1/move", {"status_id": done}
    )
    assert status == 200 and moved["status"]["name"] == "Done"
    status, moved_second, _ = await call(
        client,
        world,
        "POST",
        "/api/v1/issues/WEB-2/move",
        {"status_id": done, "before_id": world.issue.id},
        headers={"If-Match": '"1"'},
    )
    assert status == 200, moved_second
    assert moved_second["status"]["name"] == "Done", moved_second
    await fresh(session)  # forget what this session loaded before the API's moves
    columns = dict(await boards.board_columns(session, world.people["owner"], world.project.id))
    done_column = next(cards for column, cards in columns.items() if column.id == done)
    assert [card.number for card in done_column] == [2, 1]
    moves = await session.scalars(select(Activity.kind).where(Activity.kind == "issue.moved"))
    assert len(list(moves)) == 2

    status, result, _ = await call(
        client,
        world,
        "POST",
        "/api/v1/projects/WEB/issues/bulk",
        {"issue_ids": [world.issue.id, second.id], "priority": "low"},
    )
    assert status == 200 and result == {"changed": 2}
    status, refusal, _ = await call(
        client,
        world,
        "POST",
        "/api/v1/projects/WEB/issues/bulk",
        {"issue_ids": [world.public_issue.id], "priority": "low"},
    )
    assert status == 400 and refusal["error"]["field"] == "issues"


async def test_comments_are_listed_added_edited_and_deleted(
    client: Client, world: ApiWorld, session: AsyncSession
) -> None:
    base = "/api/v1/issues/WEB-1/comments"
    status, comment, _ = await call(
        client, world, "POST", base, {"body": "Looks *bad*"}, who="member"
    )
    assert status == 201 and comment["author"]["id"] == world.people["member"].id
    status, edited, _ = await call(
        client, world, "PATCH", f"{base}/{comment['id']}", {"body": "Fixed"}, who="member"
    )
    assert status == 200 and edited["body"] == "Fixed" and edited["edited_at"] is not None
    status, _, _ = await call(
        client, world, "PATCH", f"{base}/{comment['id']}", {"body": "Mine now"}, who="owner"
    )
    assert status == 403
    # A comment named under another issue does not exist there.
    status, _, _ = await call(
        client, world, "DELETE", f"/api/v1/issues/PUB-1/comments/{comment['id']}", who="member"
    )
    assert status == 404
    status, listed, _ = await call(client, world, "GET", base)
    assert [c["body"] for c in listed["items"]] == ["Fixed"]
    status, _, _ = await call(client, world, "DELETE", f"{base}/{comment['id']}", who="member")
    assert status == 204
    await fresh(session)
    assert (await session.get(Comment, comment["id"])).deleted_at is not None
    status, listed, _ = await call(client, world, "GET", base)
    assert listed["items"] == []


# --- Errors -----------------------------------------------------------------------------------


async def test_every_refusal_is_json_in_one_shape(
    app: Quart, client: Client, world: ApiWorld
) -> None:
    auth = world.auth("owner")
    answers = {
        "malformed json": await client.post(
            "/api/v1/projects",
            data=b'{"key": ',
            headers={**auth, "Content-Type": "application/json"},
        ),
        "invalid utf-8": await client.post(
            "/api/v1/projects",
            data=b'{"key": "\xff\xfe"}',
            headers={**auth, "Content-Type": "application/json"},
        ),
        "lone surrogate": await client.post(
            "/api/v1/projects",
            data=b'{"key": "AB", "name": "\\ud800"}',
            headers={**auth, "Content-Type": "application/json"},
        ),
        "wrong type": await client.post(
            "/api/v1/projects/WEB/issues", json={"title": 12}, headers=auth
        ),
        "unknown field": await client.post(
            "/api/v1/projects/WEB/issues", json={"title": "x", "colour": "red"}, headers=auth
        ),
        "not json": await client.post(
            "/api/v1/projects/WEB/issues", form={"title": "x"}, headers=auth
        ),
        "too large": await client.post(
            "/api/v1/projects/WEB/issues",
            json={"title": "x", "description": "y" * (app.config["API_MAX_BODY_BYTES"] + 1)},
            headers=auth,
        ),
        "no such route": await client.get("/api/v1/nothing", headers=auth),
        "no such issue": await client.get("/api/v1/issues/WEB-99", headers=auth),
        "wrong method": await client.delete("/api/v1/issues/WEB-1", headers=auth),
    }
    statuses = {name: response.status_code for name, response in answers.items()}
    assert statuses == {
        "malformed json": 400,
        "invalid utf-8": 400,
        "lone surrogate": 400,
        "wrong type": 400,
        "unknown field": 400,
        "not json": 400,
        "too large": 413,
        "no such route": 404,
        "no such issue": 404,
        "wrong method": 405,
    }
    for name, response in answers.items():
        body = await response.get_json()
        assert set(body) == {"error"}, name
        assert set(body["error"]) == {"code", "message", "field"}, name
    assert (await answers["wrong type"].get_json())["error"]["field"] == "title"
    assert "GET" in answers["wrong method"].headers["Allow"]


async def test_the_document_and_its_page(client: Client) -> None:
    spec = await (await client.get("/api/v1/openapi.json")).get_json()
    assert all(path.startswith("/api/v1/") for path in spec["paths"])
    assert "/api/v1/issues/{key}" in spec["paths"] and "/api/v1/docs" not in spec["paths"]
    page = await client.get("/api/v1/docs")
    text = await page.get_data(as_text=True)
    assert page.status_code == 200 and "PATCH /api/v1/issues/{key}" in text
    # The page runs under the app's strict policy: no scripts from elsewhere.
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert "cdn" not in text.lower()


async def test_anonymous_callers_read_public_projects_only(
    client: Client, world: ApiWorld, session: AsyncSession
) -> None:
    listed = await (await client.get("/api/v1/projects")).get_json()
    assert [p["key"] for p in listed["items"]] == ["PUB"]
    assert (await client.get("/api/v1/issues/PUB-1")).status_code == 200
    found = await (await client.get("/api/v1/projects/PUB/issues")).get_json()
    assert [issue["key"] for issue in found["items"]] == ["PUB-1"]
    assert (await client.get("/api/v1/issues/WEB-1")).status_code == 404
    assert (await client.get("/api/v1/projects/WEB/issues")).status_code == 404
    refused = await client.post("/api/v1/projects/PUB/issues", json={"title": "x"})
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert (await client.get("/api/v1/me")).status_code == 401
    assert await session.scalar(select(Issue.id).where(Issue.title == "x")) is None
