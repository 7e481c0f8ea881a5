"""The pages' forms read through the API's input models: the same bad value gets the same
message from the API and beside the form's field, and each form's empty values mean what the
page says they mean."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

import pytest
from markupsafe import escape
from quart import Quart
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from app.models import Issue, Project, Role
from app.services import api_tokens, projects
from tests.factories import add_member, make_issue, make_project, make_user
from tests.pages import PASSWORD, log_in, submit, text_of

if TYPE_CHECKING:  # as a module name, pytest would try to collect it as a test class
    from quart.typing import TestClientProtocol


@dataclass
class Desk:
    """Ann owns WEB (one issue, WEB-1, and a label) and has an API token; Vic views it."""

    app: Quart
    client: TestClientProtocol
    token: str
    issue_id: int
    label_id: int
    status_ids: list[int]
    ann_id: int

    async def api(self, method: str, path: str, body: Any) -> tuple[int, dict]:
        response = await self.client.open(
            path, method=method, json=body, headers={"Authorization": f"Bearer {self.token}"}
        )
        return response.status_code, await response.get_json()

    async def issue(self) -> Issue:
        async with self.app.extensions["database"].sessionmaker() as session:
            return await session.scalar(
                select(Issue).where(Issue.id == self.issue_id).options(selectinload(Issue.labels))
            )

    async def count(self, model: type) -> int:
        async with self.app.extensions["database"].sessionmaker() as session:
            return await session.scalar(select(func.count()).select_from(model))


@pytest.fixture
async def desk(app: Quart, client: TestClientProtocol) -> Desk:
    hasher = app.extensions["account_settings"].hasher
    async with app.extensions["database"].sessionmaker() as session:
        password_hash = await hasher.hash(PASSWORD)
        ann = await make_user(session, email="ann@example.com", password_hash=password_hash)
        vic = await make_user(session, email="vic@example.com", password_hash=password_hash)
        project = await make_project(session, ann, key="WEB")
        await add_member(session, project, vic, Role.VIEWER)
        issue = await make_issue(session, ann, project, title="First")
        label = await projects.save_label(session, ann, project.id, name="bug", color="#dc2626")
        status_ids = [status.id for status in await projects.workflow(session, project.id)]
        token = await api_tokens.create_token(session, ann, name="tests", scope="write")
        desk = Desk(app, client, token.secret, issue.id, label.id, status_ids, ann.id)
    assert (await log_in(client, "ann@example.com")).status_code == 302
    return desk


def shown_beside_a_field(message: str, page: str) -> bool:
    """Whether `page` shows `message` as a field's error."""
    pattern = rf'<p class="field-error"[^>]*>{re.escape(str(escape(message)))}</p>'
    return re.search(pattern, page) is not None


def problem_of(api_error: dict[str, str]) -> str:
    """The API's message without the "field: " that pydantic's refusals start with."""
    return api_error["message"].removeprefix(f"{api_error['field']}: ")


# Each bad input as the API takes it (JSON) and as the new-issue form sends it (text), and the
# field the page shows the message beside.
BAD_ISSUES = {
    "a title too long": ({"title": "x" * 201}, {"title": "x" * 201}),
    "a description too long": (
        {"title": "ok", "description": "x" * 50_001},
        {"title": "ok", "description": "x" * 50_001},
    ),
    "an unknown type": ({"title": "ok", "type": "epic"}, {"title": "ok", "type": "epic"}),
    "an unknown priority": (
        {"title": "ok", "priority": "critical"},
        {"title": "ok", "priority": "critical"},
    ),
    "a status id too large to name one": (
        {"title": "ok", "status_id": 2**31},
        {"title": "ok", "status": str(2**31)},
    ),
    "a label id too large to name one": (
        {"title": "ok", "label_ids": [2**31]},
        {"title": "ok", "labels": str(2**31)},
    ),
    "a date that is not one": (
        {"title": "ok", "due_date": "31/01/2027"},
        {"title": "ok", "due": "31/01/2027"},
    ),
}


@pytest.mark.parametrize("bad", BAD_ISSUES.values(), ids=BAD_ISSUES.keys())
async def test_the_new_issue_form_shows_beside_the_field_what_the_api_answers(
    desk: Desk, bad: tuple[dict, dict]
) -> None:
    as_json, as_form = bad
    status, answer = await desk.api("POST", "/api/v1/projects/WEB/issues", as_json)
    assert status == 400, answer
    page = await submit(desk.client, "/p/WEB/issues/new", as_form)
    assert page.status_code == 400
    assert shown_beside_a_field(problem_of(answer["error"]), await text_of(page))
    assert await desk.count(Issue) == 1


BAD_PROJECTS = {
    "a one-letter key": {"key": "W", "name": "Web"},
    "a key too long": {"key": "TOOLONGKEY1", "name": "Web"},
    "a key that starts with a digit": {"key": "1WEB", "name": "Web"},
    "a name too long": {"key": "NEW", "name": "x" * 101},
    "a description too long": {"key": "NEW", "name": "Web", "description": "x" * 5001},
}


@pytest.mark.parametrize("bad", BAD_PROJECTS.values(), ids=BAD_PROJECTS.keys())
async def test_a_bad_project_is_refused_alike_by_the_api_and_the_form(
    desk: Desk, bad: dict[str, str]
) -> None:
    status, answer = await desk.api("POST", "/api/v1/projects", bad)
    assert status == 400, answer
    page = await submit(desk.client, "/projects/new", bad)
    assert page.status_code == 400
    assert shown_beside_a_field(problem_of(answer["error"]), await text_of(page))
    assert await desk.count(Project) == 1


async def test_an_in_place_edit_sets_and_clears_each_field(desk: Desk) -> None:
    version = 1

    async def edit(field: str, **values: Any) -> Issue:
        nonlocal version
        form = {"field": field, "version": str(version), **{k: str(v) for k, v in values.items()}}
        response = await submit(desk.client, "/WEB-1/edit", form)
        assert response.status_code == 302, await text_of(response)
        issue = await desk.issue()
        version = issue.version
        return issue

    assert (await edit("title", title="Renamed")).title == "Renamed"
    assert (await edit("type", type="bug")).type == "bug"
    assert (await edit("priority", priority="high")).priority == "high"
    assert (await edit("status", status=desk.status_ids[2])).status_id == desk.status_ids[2]
    assert (await edit("assignee", assignee=desk.ann_id)).assignee_id == desk.ann_id
    assert (await edit("assignee", assignee="")).assignee_id is None
    assert [label.id for label in (await edit("labels", labels=desk.label_id)).labels] == [
        desk.label_id
    ]
    assert (await edit("labels")).labels == []  # no box ticked: none left
    assert (await edit("due", due="2027-01-31")).due_date == date(2027, 1, 31)
    assert (await edit("due", due="")).due_date is None


async def test_a_refused_in_place_edit_says_what_the_api_says_and_changes_nothing(
    desk: Desk,
) -> None:
    status, answer = await desk.api("PATCH", "/api/v1/issues/WEB-1", {"due_date": "2027-13-01"})
    assert status == 400
    page = await submit(
        desk.client, "/WEB-1/edit", {"field": "due", "due": "2027-13-01", "version": "1"}
    )
    assert page.status_code == 400
    assert str(escape(problem_of(answer["error"]))) in await text_of(page)
    assert (await desk.issue()).version == 1


async def test_a_bulk_edit_leaves_alone_what_it_is_not_asked_to_change(desk: Desk) -> None:
    await submit(desk.client, "/WEB-1/edit", {"field": "assignee", "assignee": str(desk.ann_id)})
    await submit(desk.client, "/WEB-1/edit", {"field": "labels", "labels": str(desk.label_id)})
    # Assignee left at "Assignee…", no label ticked: only the priority changes.
    form = {"issue": str(desk.issue_id), "priority": "low", "assignee": "", "status": ""}
    assert (await submit(desk.client, "/p/WEB/issues/bulk", form)).status_code == 302
    issue = await desk.issue()
    assert (issue.priority, issue.assignee_id, len(issue.labels)) == ("low", desk.ann_id, 1)
    # "Nobody" takes the assignee away.
    form = {"issue": str(desk.issue_id), "assignee": "none"}
    assert (await submit(desk.client, "/p/WEB/issues/bulk", form)).status_code == 302
    issue = await desk.issue()
    assert (issue.priority, issue.assignee_id, len(issue.labels)) == ("low", None, 1)


async def test_a_refused_form_is_explained_only_to_someone_who_may_submit_it(
    desk: Desk, app: Quart
) -> None:
    bad = {"title": "ok", "due": "31/01/2027"}
    viewer = app.test_client()
    await log_in(viewer, "vic@example.com")
    assert (await submit(viewer, "/p/WEB/issues/new", bad)).status_code == 403
    assert (await submit(desk.client, "/p/WEB/issues/new", bad)).status_code == 400
