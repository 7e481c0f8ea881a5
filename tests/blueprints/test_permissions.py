"""The permission matrix: every route, every kind of visitor, public and private projects.

Each route is probed with a request that passes authorisation harmlessly: where a change would
go through, the probe sends a value the service refuses *after* checking who asks (an empty
title, an unknown role), so one world serves every probe. What is compared is the class of the
answer: allowed (2xx, 3xx other than to the login page, or a 400/409 from validation), login
(a redirect to the login page or 401), forbidden (403) and hidden (404).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import pytest
from quart import Quart
from sqlalchemy import select

from app import create_app
from app.models import (
    Comment,
    Label,
    Passkey,
    Role,
    SavedSearch,
    WebhookDelivery,
    WorkflowStatus,
)
from app.outbound.webhooks import TargetPolicy
from app.services import (
    api_tokens,
    comments,
    importing,
    milestones,
    project_webhooks,
    projects,
    search,
)
from tests.conftest import app_settings
from tests.factories import add_member, make_attachment, make_issue, make_project, make_user
from tests.mailcatcher import MailCatcher
from tests.pages import PASSWORD, csrf_token, log_in

VISITORS = ("anonymous", "outsider", "viewer", "member", "admin", "owner")

# What each route needs. "anyone": no login; "login": any account; "read", "write", "manage":
# that access to the project; "author": the comment's author, "saver": the saved search's
# owner (both are the project's owner here; to others the search does not exist); an
# attachment's uploader is the "author" too; "site_admin": a 404 to everyone else.
ROUTES: dict[str, tuple[str, str, str, dict[str, str]]] = {
    # endpoint: (need, method, path, form)
    "main.index": ("anyone", "GET", "/", {}),
    "main.healthz": ("anyone", "GET", "/healthz", {}),
    "main.readyz": ("anyone", "GET", "/readyz", {}),
    # Only clients in METRICS_ALLOW: the test client has no address, so a 404 to everyone.
    "main.scrape": ("metrics_network", "GET", "/metrics", {}),
    "static": ("anyone", "GET", "/static/css/app.css", {}),
    "auth.signup": ("anyone", "GET", "/auth/signup", {}),
    "auth.login": ("anyone", "GET", "/auth/login", {}),
    "auth.verify": ("anyone", "GET", "/auth/verify/x", {}),
    "auth.confirm_email": ("anyone", "GET", "/auth/confirm-email/x", {}),
    "auth.forgot": ("anyone", "GET", "/auth/forgot", {}),
    "auth.reset": ("anyone", "GET", "/auth/reset/x", {}),
    "auth.resend_verification": ("login", "POST", "/auth/verify/resend", {}),
    "account.index": ("login", "GET", "/account/", {}),
    "account.change_name": ("login", "POST", "/account/name", {"display_name": ""}),
    "account.change_password": ("login", "POST", "/account/password", {}),
    "account.change_email": ("login", "POST", "/account/email", {}),
    "account.notifications": ("login", "POST", "/account/notifications", {"notify_by_email": "on"}),
    "account.end_other_sessions": ("login", "POST", "/account/sessions/end-others", {}),
    "account.create_token": ("login", "POST", "/account/tokens", {"name": ""}),
    "account.revoke_token": ("saver", "POST", "/account/tokens/{token}/revoke", {}),
    "security_log.index": ("login", "GET", "/account/security-log", {}),
    "feeds.settings": ("login", "GET", "/account/feeds", {}),
    "feeds.new_token": ("login", "POST", "/account/feeds", {}),
    "feeds.turn_off": ("login", "POST", "/account/feeds/off", {}),
    "feeds.project_activity": ("feed", "GET", "/p/{key}/activity.atom", {}),
    "feeds.saved_search": ("feed_saver", "GET", "/searches/{saved}.atom", {}),
    # Site admins only: nobody in this world is one, so it does not exist for any of them.
    "audit_log.index": ("site_admin", "GET", "/admin/audit", {}),
    "audit_log.export_csv": ("site_admin", "GET", "/admin/audit/export.csv", {}),
    "audit_log.export_json_lines": ("site_admin", "GET", "/admin/audit/export.jsonl", {}),
    # No login held for a second factor: sent to the login page; a logged-in visitor goes home.
    "two_factor.second_step": ("login", "GET", "/auth/two-factor", {}),
    "two_factor.recovery_step": ("login", "POST", "/auth/two-factor/recovery", {"code": ""}),
    "two_factor.manage": ("login", "GET", "/account/two-factor", {}),
    "two_factor.enable": ("login", "POST", "/account/two-factor/enable", {}),
    "two_factor.confirm": ("login", "POST", "/account/two-factor/confirm", {"code": ""}),
    "two_factor.regenerate": ("login", "POST", "/account/two-factor/recovery-codes", {}),
    "two_factor.disable": ("login", "POST", "/account/two-factor/disable", {}),
    # The ceremonies take JSON: a form is refused (400) once the login and CSRF checks pass.
    "passkeys.registration_options": ("login", "POST", "/account/passkeys/options", {}),
    "passkeys.add": ("login", "POST", "/account/passkeys", {}),
    "passkeys.rename": ("saver", "POST", "/account/passkeys/{passkey}/rename", {"name": "Key"}),
    "passkeys.sign_in_options": ("anyone", "POST", "/auth/passkey/options", {}),
    "passkeys.sign_in": ("anyone", "POST", "/auth/passkey/verify", {}),
    "passkeys.second_factor_options": ("anyone", "POST", "/auth/passkey/second-factor/options", {}),
    "passkeys.second_factor": ("anyone", "POST", "/auth/passkey/second-factor/verify", {}),
    # The inbox: one's own entries only ("saver": the owner has an entry of the issue).
    "inbox.index": ("login", "GET", "/inbox/?tab=all", {}),
    "inbox.count": ("login", "GET", "/inbox/count", {}),
    "inbox.events": ("login", "STREAM", "/inbox/events", {}),
    "inbox.read_all": ("login", "POST", "/inbox/read-all", {}),
    "inbox.read": ("saver", "POST", "/inbox/{issue_id}/read", {}),
    "inbox.done": ("saver", "POST", "/inbox/{issue_id}/done", {}),
    "inbox.open_issue": ("saver", "GET", "/inbox/{issue_id}", {}),
    "projects.index": ("login", "GET", "/projects", {}),
    "projects.new": ("login", "GET", "/projects/new", {}),
    "finding.my_issues": ("login", "GET", "/issues", {}),
    "finding.search_page": ("login", "GET", "/search?q=is:open", {}),
    "finding.export": ("login", "GET", "/search.csv?q=is:open", {}),
    "finding.save_search": ("login", "POST", "/searches", {"name": "", "q": "is:open"}),
    "finding.delete_search": ("saver", "POST", "/searches/{saved}/delete", {}),
    "finding.person": ("login", "GET", "/u/{owner_handle}", {}),
    "issues.project_issues": ("read", "GET", "/p/{key}", {}),
    "issues.show": ("read", "GET", "/{issue}", {}),
    "projects.members": ("read", "GET", "/p/{key}/members", {}),
    "issues.watch": ("read", "POST", "/{issue}/watch", {"watching": "1"}),
    "boards.board": ("read", "GET", "/p/{key}/board", {}),
    "boards.column": ("read", "GET", "/p/{key}/board/columns/{status}?after=0:1", {}),
    "boards.counts": ("read", "GET", "/p/{key}/board/counts", {}),
    "boards.events": ("read", "STREAM", "/p/{key}/events", {}),
    "boards.move": ("write", "POST", "/p/{key}/board/moves", {"issue": "{issue_id}"}),
    "issues.new": ("write", "GET", "/p/{key}/issues/new", {}),
    "issues.edit": ("write", "POST", "/{issue}/edit", {"field": "title", "title": ""}),
    "issues.add_comment": ("write", "POST", "/{issue}/comments", {"body": ""}),
    "issues.bulk_edit": ("write", "POST", "/p/{key}/issues/bulk", {"issue": "{issue_id}"}),
    "issues.change_comment": ("author", "POST", "/{issue}/comments/{comment}", {"body": ""}),
    "relations.add_sub_issue": ("write", "POST", "/{issue}/sub-issues", {"title": ""}),
    "relations.add_relation": ("write", "POST", "/{issue}/relations", {"type": "x"}),
    # No such relation: a writer is told it is gone (302), others are refused first.
    "relations.remove_relation": ("write", "POST", "/{issue}/relations/2147483647/delete", {}),
    "projects.settings": ("manage", "GET", "/p/{key}/settings", {}),
    "projects.save_settings": ("manage", "POST", "/p/{key}/settings", {"name": ""}),
    "projects.archive": ("manage", "POST", "/p/{key}/archive", {"archived": "0"}),
    "projects.add_status": ("manage", "POST", "/p/{key}/statuses", {"name": ""}),
    "projects.update_status": ("manage", "POST", "/p/{key}/statuses/{status}", {"name": ""}),
    "projects.save_label": ("manage", "POST", "/p/{key}/labels", {"name": ""}),
    "projects.add_member": ("manage", "POST", "/p/{key}/members", {"role": "nobody"}),
    "projects.update_member": (
        "manage",
        "POST",
        "/p/{key}/members/{bystander}",
        {"role": "nobody"},
    ),
    "webhooks.index": ("manage", "GET", "/p/{key}/settings/webhooks", {}),
    "webhooks.create": ("manage", "POST", "/p/{key}/settings/webhooks", {"url": ""}),
    "webhooks.show": ("manage", "GET", "/p/{key}/settings/webhooks/{hook}", {}),
    "webhooks.update": ("manage", "POST", "/p/{key}/settings/webhooks/{hook}", {"url": ""}),
    "webhooks.ping": ("manage", "POST", "/p/{key}/settings/webhooks/{hook}/ping", {}),
    "webhooks.redeliver": (
        "manage",
        "POST",
        "/p/{key}/settings/webhooks/{hook}/deliveries/{delivery}/redeliver",
        {},
    ),
    "imports.upload": ("manage", "POST", "/p/{key}/imports", {"kind": ""}),
    "imports.job": ("manage", "GET", "/p/{key}/imports/{import_job}", {}),
    "imports.progress": ("manage", "GET", "/p/{key}/imports/{import_job}/progress", {}),
    "imports.export": ("manage", "GET", "/p/{key}/export", {}),
    "imports.restore_form": ("login", "GET", "/projects/restores", {}),
    # No file: refused with 400 after the login and validation checks.
    "imports.restore_upload": ("login", "POST", "/projects/restores", {}),
    # A restore's job is its requester's (the owner here); to others it does not exist.
    "imports.restore_job": ("saver", "GET", "/projects/restores/{restore_job}", {}),
    "imports.restore_progress": (
        "saver",
        "GET",
        "/projects/restores/{restore_job}/progress",
        {},
    ),
    "milestones.index": ("read", "GET", "/p/{key}/milestones", {}),
    "milestones.roadmap": ("read", "GET", "/p/{key}/roadmap", {}),
    "milestones.show": ("read", "GET", "/p/{key}/milestones/{milestone}", {}),
    "milestones.create": ("write", "POST", "/p/{key}/milestones", {"title": ""}),
    "milestones.edit": ("write", "POST", "/p/{key}/milestones/{milestone}/edit", {"title": ""}),
    "milestones.close": ("write", "GET", "/p/{key}/milestones/{milestone}/close", {}),
    "milestones.reopen": ("write", "POST", "/p/{key}/milestones/{milestone}/reopen", {}),
    "attachments.upload": ("write", "POST", "/{issue}/attachments", {}),
    "attachments.file": ("read", "GET", "/attachments/{attachment}", {}),
    "attachments.thumbnail": ("read", "GET", "/attachments/{attachment}/thumbnail", {}),
    # After the reads: the owner (the uploader, probed last) deletes it.
    "attachments.delete": ("author", "POST", "/attachments/{attachment}/delete", {}),
    # After the rename: the owner (probed last) removes it.
    "passkeys.remove": ("saver", "POST", "/account/passkeys/{passkey}/remove", {}),
    # The site admin console: no visitor here is a site admin (the project's "admin" is a
    # project role), so every one of them, anonymous too, gets its 404. tests/blueprints/
    # test_admin.py probes the same URLs as a site admin.
    "admin.home": ("site_admin", "GET", "/admin", {}),
    "admin.people": ("site_admin", "GET", "/admin/people", {}),
    "admin.person": ("site_admin", "GET", "/admin/people/{bystander}", {}),
    "admin.deactivate": ("site_admin", "POST", "/admin/people/{bystander}/deactivate", {}),
    "admin.reactivate": ("site_admin", "POST", "/admin/people/{bystander}/reactivate", {}),
    "admin.set_admin": ("site_admin", "POST", "/admin/people/{bystander}/admin", {"admin": "1"}),
    "admin.reset_two_factor": (
        "site_admin",
        "POST",
        "/admin/people/{bystander}/two-factor/reset",
        {},
    ),
    "admin.projects": ("site_admin", "GET", "/admin/projects", {}),
    "admin.project": ("site_admin", "GET", "/admin/projects/1", {}),
    "admin.transfer": ("site_admin", "POST", "/admin/projects/1/transfer", {"owner": ""}),
    "admin.mail": ("site_admin", "GET", "/admin/mail", {}),
    "admin.retry_mail": ("site_admin", "POST", "/admin/mail/1/retry", {}),
    "admin.webhooks": ("site_admin", "GET", "/admin/webhooks", {}),
    "admin.retry_delivery": ("site_admin", "POST", "/admin/webhooks/{delivery}/retry", {}),
    "admin.configuration": ("site_admin", "GET", "/admin/configuration", {}),
    # Last: it ends the visitor's session.
    "auth.logout": ("anyone", "POST", "/auth/logout", {}),
}

# The answer each visitor should get, by what the route needs and the project's visibility.
LEVEL = {"anonymous": 0, "outsider": 1, "viewer": 2, "member": 3, "admin": 4, "owner": 5}


def expected(need: str, visitor: str, public: bool) -> str:
    level = LEVEL[visitor]
    if need == "anyone":
        return "allowed"
    if need in ("site_admin", "metrics_network"):
        return "hidden"
    # Feed readers cannot log in: what a visitor may not read is a 404, never a login page.
    if need == "feed":
        return "allowed" if public or level >= LEVEL["viewer"] else "hidden"
    if need == "feed_saver":
        return "allowed" if visitor == "owner" else "hidden"
    if visitor == "anonymous":
        return "login"
    if need == "login":
        return "allowed"
    if need == "saver":
        return "allowed" if visitor == "owner" else "hidden"
    if visitor == "outsider" and not public:
        return "hidden"
    if need == "read":
        return "allowed"
    if need == "write":
        return "allowed" if level >= LEVEL["member"] else "forbidden"
    if need == "author":
        return "allowed" if visitor == "owner" else "forbidden"
    if need == "manage":
        return "allowed" if level >= LEVEL["admin"] else "forbidden"
    raise AssertionError(need)


def outcome(status: int, location: str) -> str:
    if status == 401 or (status == 302 and location.startswith("/auth/login")):
        return "login"
    if status == 403:
        return "forbidden"
    if status == 404:
        return "hidden"
    if status < 400 or status in (400, 409):
        return "allowed"
    return f"error {status}"


@dataclass
class World:
    values: dict[str, str]
    clients: dict[str, object]


async def build_world(app: Quart, public: bool) -> World:
    async with app.extensions["database"].sessionmaker() as session:
        people = {
            role: await make_user(session, email=f"{role}@example.com") for role in VISITORS[1:]
        }
        owner = people["owner"]
        project = await make_project(session, owner, key="PRJ", is_public=public)
        # Sent nowhere (nothing sends in tests); its first delivery is the one to redeliver.
        hook = await project_webhooks.create_webhook(
            session,
            owner,
            project.id,
            url="http://127.0.0.1:9/hook",
            events=["*"],
            policy=TargetPolicy(allow_private=True),
        )
        for role in ("viewer", "member", "admin"):
            await add_member(session, project, people[role], Role(role))
        bystander = await make_user(session, email="bystander@example.com")
        await add_member(session, project, bystander, Role.MEMBER)
        issue = await make_issue(session, owner, project)
        comment = await comments.add_comment(session, owner, issue.id, "A first comment")
        # The owner (a watcher, as reporter) hears of it: an entry in the owner's inbox.
        await comments.add_comment(session, bystander, issue.id, "A question for the owner")
        attachment = await make_attachment(
            session, app.extensions["attachment_storage"], owner, issue
        )
        status_id = await session.scalar(
            select(WorkflowStatus.id).where(WorkflowStatus.project_id == project.id).limit(1)
        )
        await projects.save_label(session, owner, project.id, name="bug", color="#dc2626")
        saved = await search.save_search(session, owner, name="Mine", query="assignee:me")
        token = await api_tokens.create_token(session, owner, name="CI", scope="read")
        milestone = await milestones.create_milestone(session, owner, project.id, title="1.0")
        import_job = await importing.queue_import(
            session,
            owner,
            project.id,
            kind="jira",
            source_path=Path("/nonexistent.csv"),
            source_name="export.csv",
        )
        restore_job = await importing.queue_restore(
            session, owner, source_path=Path("/nonexistent.zip"), source_name="web.zip"
        )
        for user in people.values():
            user.password_hash = await app.extensions["account_settings"].hasher.hash(PASSWORD)
            session.add(user)
        await session.commit()
        values = {
            "key": "PRJ",
            "hook": str(hook.id),
            "delivery": str(await session.scalar(select(WebhookDelivery.id).limit(1))),
            "issue": "PRJ-1",
            "issue_id": str(issue.id),
            "comment": str(comment.id),
            "attachment": str(attachment.id),
            "status": str(status_id),
            "bystander": str(bystander.id),
            "saved": str(saved.id),
            "token": str(token.token.id),
            "owner_handle": owner.handle,
            "owner_id": str(owner.id),
            "milestone": str(milestone.id),
            "import_job": str(import_job.id),
            "restore_job": str(restore_job.id),
        }
        assert await session.scalar(select(Label.id)) and await session.scalar(select(Comment.id))
        assert await session.scalar(select(SavedSearch.id))
    clients = {}
    for visitor in VISITORS:
        client = app.test_client()
        if visitor != "anonymous":
            response = await log_in(client, f"{visitor}@example.com")
            assert response.status_code == 302, visitor
        clients[visitor] = client
    # After the logins: with a passkey, the owner's password login would wait for it.
    async with app.extensions["database"].sessionmaker() as session:
        passkey = Passkey(
            user_id=int(values["owner_id"]),
            credential_id=b"owner-credential",
            public_key=b"cose",
            user_handle=b"handle",
            name="Key",
        )
        session.add(passkey)
        await session.commit()
        values["passkey"] = str(passkey.id)
    return World(values, clients)


async def stream_status(client, url: str) -> tuple[int, str]:
    """The status of an endless event stream: read the head, then hang up."""
    async with client.request(url) as connection:
        await connection.send_complete()
        await asyncio.wait_for(connection.receive(), 5)
        status, location = connection.status_code, connection.headers.get("Location", "")
        await connection.disconnect()
    return status, location


# The JSON API has a matrix of its own: tests/api/test_permissions.py.
API_ENDPOINTS = ("api.", "openapi")


def test_every_route_is_in_the_matrix() -> None:
    app = create_app("testing")
    endpoints = {
        rule.endpoint
        for rule in app.url_map.iter_rules()
        if not rule.endpoint.startswith(API_ENDPOINTS)
    }
    assert endpoints == set(ROUTES), (
        f"missing from the matrix: {endpoints - set(ROUTES)}; stale: {set(ROUTES) - endpoints}"
    )


@pytest.mark.parametrize("public", [True, False], ids=["public", "private"])
async def test_the_permission_matrix(database_url: str, mailbox: MailCatcher, public: bool) -> None:
    # Every visitor comes from one test address: per-client limits would answer 429.
    app = create_app("testing", **app_settings(database_url, mailbox, RATE_LIMIT_ENABLED=False))
    async with app.test_app():
        unexpected, probes = await probe_everything(app, public)
    print(
        f"permission matrix ({'public' if public else 'private'}): {probes} probes, "
        f"{len(unexpected)} unexpected"
    )
    assert unexpected == []


async def probe_everything(app: Quart, public: bool) -> tuple[list[tuple], int]:
    world = await build_world(app, public)
    unexpected = []
    probes = 0
    for endpoint, (need, method, path, form) in ROUTES.items():
        url = path.format(**world.values)
        body = {name: value.format(**world.values) for name, value in form.items()}
        for visitor in VISITORS:
            client = world.clients[visitor]
            if method == "STREAM":
                got = outcome(*await stream_status(client, url))
            else:
                if method == "POST":
                    body["csrf_token"] = await csrf_token(client)
                response = await client.open(
                    url, method=method, form=body if method == "POST" else None
                )
                got = outcome(response.status_code, response.headers.get("Location", ""))
            want = expected(need, visitor, public)
            probes += 1
            if got != want:
                unexpected.append((endpoint, visitor, want, got, response.status_code))
    return unexpected, probes
