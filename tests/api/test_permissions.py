"""The API's permission matrix: every endpoint, every kind of caller, public and private
projects, and a read-only token. Probes pass authorisation harmlessly (a value the service
refuses after checking who asks), as in tests/blueprints/test_permissions.py."""

from __future__ import annotations

import pytest
from quart import Quart
from sqlalchemy.ext.asyncio import AsyncSession

from app import create_app
from app.models import Role
from app.services import api_tokens, comments, milestones, projects
from app.storage import AttachmentStorage
from tests.api.conftest import bearer
from tests.conftest import app_settings
from tests.factories import add_member, make_attachment, make_issue, make_project, make_user
from tests.mailcatcher import MailCatcher

CALLERS = ("anonymous", "outsider", "viewer", "member", "admin", "owner", "reader")
LEVEL = {"anonymous": 0, "outsider": 1, "viewer": 2, "member": 3, "admin": 4, "owner": 5}

# endpoint: (need, method, path, body)
ROUTES: dict[str, tuple[str, str, str, dict | None]] = {
    "api.docs": ("anyone", "GET", "/api/v1/docs", None),
    "api.me.show_me": ("login", "GET", "/api/v1/me", None),
    "api.me.my_audit_events": ("login", "GET", "/api/v1/me/audit", None),
    "api.projects.list_projects": ("anyone", "GET", "/api/v1/projects", None),
    "api.projects.create_project": ("login", "POST", "/api/v1/projects", {"key": "!", "name": "x"}),
    "api.projects.show_project": ("read", "GET", "/api/v1/projects/PRJ", None),
    "api.projects.update_project": ("manage", "PATCH", "/api/v1/projects/PRJ", {"name": ""}),
    "api.projects.list_members": ("read", "GET", "/api/v1/projects/PRJ/members", None),
    "api.projects.add_member": (
        "manage",
        "POST",
        "/api/v1/projects/PRJ/members",
        {"email": "nobody@example.com", "role": "viewer"},
    ),
    "api.projects.change_member_role": (
        "manage",
        "PATCH",
        "/api/v1/projects/PRJ/members/{bystander}",
        {"role": "member"},
    ),
    "api.projects.list_labels": ("read", "GET", "/api/v1/projects/PRJ/labels", None),
    "api.projects.create_label": (
        "manage",
        "POST",
        "/api/v1/projects/PRJ/labels",
        {"name": "", "color": "#000000"},
    ),
    "api.projects.update_label": (
        "manage",
        "PATCH",
        "/api/v1/projects/PRJ/labels/{label}",
        {"name": "", "color": "#000000"},
    ),
    "api.projects.list_statuses": ("read", "GET", "/api/v1/projects/PRJ/statuses", None),
    "api.projects.export_project": ("manage", "GET", "/api/v1/projects/PRJ/export", None),
    "api.projects.project_activity": ("read", "GET", "/api/v1/projects/PRJ/activity", None),
    "api.issues.list_issues": ("read", "GET", "/api/v1/projects/PRJ/issues", None),
    "api.issues.create_issue": ("write", "POST", "/api/v1/projects/PRJ/issues", {"title": ""}),
    "api.issues.bulk_update": (
        "write",
        "POST",
        "/api/v1/projects/PRJ/issues/bulk",
        {"issue_ids": ["{issue_id}"]},
    ),
    "api.issues.show_issue": ("read", "GET", "/api/v1/issues/PRJ-1", None),
    "api.issues.update_issue": ("write", "PATCH", "/api/v1/issues/PRJ-1", {"title": ""}),
    "api.issues.move_issue": (
        "write",
        "POST",
        "/api/v1/issues/PRJ-1/move",
        {"status_id": 2147483647},
    ),
    "api.issues.list_comments": ("read", "GET", "/api/v1/issues/PRJ-1/comments", None),
    "api.issues.add_comment": ("write", "POST", "/api/v1/issues/PRJ-1/comments", {"body": ""}),
    "api.issues.edit_comment": (
        "author",
        "PATCH",
        "/api/v1/issues/PRJ-1/comments/{comment}",
        {"body": ""},
    ),
    # After the edit: the owner (the author, probed last) deletes it.
    "api.issues.delete_comment": (
        "author",
        "DELETE",
        "/api/v1/issues/PRJ-1/comments/{comment}",
        None,
    ),
    "api.issues.issue_activity": ("read", "GET", "/api/v1/issues/PRJ-1/activity", None),
    "api.relations.list_relations": ("read", "GET", "/api/v1/issues/PRJ-1/relations", None),
    # Refused after the access check: an issue cannot be related to itself.
    "api.relations.add_relation": (
        "write",
        "POST",
        "/api/v1/issues/PRJ-1/relations",
        {"type": "relates_to", "issue": "PRJ-1"},
    ),
    "api.milestones.list_milestones": ("read", "GET", "/api/v1/projects/PRJ/milestones", None),
    "api.milestones.create_milestone": (
        "write",
        "POST",
        "/api/v1/projects/PRJ/milestones",
        {"title": ""},
    ),
    "api.milestones.show_milestone": (
        "read",
        "GET",
        "/api/v1/projects/PRJ/milestones/{milestone}",
        None,
    ),
    "api.milestones.update_milestone": (
        "write",
        "PATCH",
        "/api/v1/projects/PRJ/milestones/{milestone}",
        {"title": ""},
    ),
    "api.milestones.close_milestone": (
        "write",
        "POST",
        "/api/v1/projects/PRJ/milestones/{milestone}/close",
        {"move_to": 2147483647},
    ),
    "api.milestones.reopen_milestone": (
        "write",
        "POST",
        "/api/v1/projects/PRJ/milestones/{milestone}/reopen",
        None,
    ),
    "api.attachments.list_attachments": ("read", "GET", "/api/v1/issues/PRJ-1/attachments", None),
    "api.attachments.upload_attachment": ("write", "POST", "/api/v1/issues/PRJ-1/attachments", {}),
    "api.attachments.show_attachment": ("read", "GET", "/api/v1/attachments/{attachment}", None),
    "api.attachments.download_attachment": (
        "read",
        "GET",
        "/api/v1/attachments/{attachment}/content",
        None,
    ),
    # After the reads: the owner (the uploader, probed last) deletes it.
    "api.attachments.delete_attachment": (
        "author",
        "DELETE",
        "/api/v1/attachments/{attachment}",
        None,
    ),
}
# Destructive for whoever is allowed first, so pinned by tests/api/test_endpoints.py instead.
NOT_PROBED = {
    "api.projects.remove_member",
    "api.projects.delete_label",
    "api.relations.remove_relation",  # tests/api/test_relations.py
}


def expected(need: str, caller: str, public: bool, method: str) -> str:
    if need == "anyone":
        return "allowed"
    if caller == "anonymous":
        if method != "GET" or need in ("login", "manage"):  # a manager must be someone
            return "login"
        return "allowed" if public else "hidden"
    if caller == "reader":  # the member's read-only token
        if method != "GET":
            return "forbidden"
        caller = "member"
    if need == "login":
        return "allowed"
    if caller == "outsider" and not public:
        return "hidden"
    level = LEVEL[caller]
    if need == "read":
        return "allowed"
    if need == "write":
        return "allowed" if level >= LEVEL["member"] else "forbidden"
    if need == "manage":
        return "allowed" if level >= LEVEL["admin"] else "forbidden"
    if need == "author":
        return "allowed" if caller == "owner" else "forbidden"
    raise AssertionError(need)


def outcome(status: int) -> str:
    if status == 401:
        return "login"
    if status == 403:
        return "forbidden"
    if status == 404:
        return "hidden"
    if status < 400 or status in (400, 409):
        return "allowed"
    return f"error {status}"


def test_every_api_route_is_in_the_matrix() -> None:
    app = create_app("testing")
    endpoints = {
        rule.endpoint for rule in app.url_map.iter_rules() if rule.endpoint.startswith("api.")
    }
    assert endpoints == set(ROUTES) | NOT_PROBED


async def build(
    session: AsyncSession, storage: AttachmentStorage, public: bool
) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """The callers' Authorization headers, and the values the paths need."""
    people = {
        name: await make_user(session, email=f"{name}@example.com")
        for name in LEVEL
        if name != "anonymous"
    }
    owner = people["owner"]
    project = await make_project(session, owner, key="PRJ", is_public=public)
    for role in ("viewer", "member", "admin"):
        await add_member(session, project, people[role], Role(role))
    bystander = await make_user(session, email="bystander@example.com")
    await add_member(session, project, bystander, Role.MEMBER)
    issue = await make_issue(session, owner, project)
    comment = await comments.add_comment(session, owner, issue.id, "A first comment")
    label = await projects.save_label(session, owner, project.id, name="bug", color="#dc2626")
    milestone = await milestones.create_milestone(session, owner, project.id, title="1.0")
    attachment = await make_attachment(session, storage, owner, issue)
    headers: dict[str, dict[str, str]] = {"anonymous": {}}
    for name, user in people.items():
        made = await api_tokens.create_token(session, user, name="t", scope="write")
        headers[name] = bearer(made.secret)
    reader = await api_tokens.create_token(session, people["member"], name="r", scope="read")
    headers["reader"] = bearer(reader.secret)
    values = {
        "bystander": str(bystander.id),
        "issue_id": str(issue.id),
        "comment": str(comment.id),
        "label": str(label.id),
        "milestone": str(milestone.id),
        "attachment": str(attachment.id),
    }
    return headers, values


def _filled(body: object, values: dict[str, str]) -> object:
    if isinstance(body, dict):
        return {name: _filled(value, values) for name, value in body.items()}
    if isinstance(body, list):
        return [_filled(item, values) for item in body]
    if isinstance(body, str) and body.startswith("{") and body.endswith("}"):
        return int(values[body[1:-1]])
    return body


@pytest.mark.parametrize("public", [True, False], ids=["public", "private"])
async def test_the_api_permission_matrix(
    database_url: str, mailbox: MailCatcher, public: bool
) -> None:
    app: Quart = create_app("testing", **app_settings(database_url, mailbox))
    unexpected = []
    async with app.test_app():
        async with app.extensions["database"].sessionmaker() as session:
            headers, values = await build(session, app.extensions["attachment_storage"], public)
        client = app.test_client()
        for endpoint, (need, method, path, body) in ROUTES.items():
            url = path.format(**values)
            for caller in CALLERS:
                response = await client.open(
                    url, method=method, json=_filled(body, values), headers=headers[caller]
                )
                got, want = outcome(response.status_code), expected(need, caller, public, method)
                if got != want:
                    unexpected.append((endpoint, caller, want, got))
    assert unexpected == []
