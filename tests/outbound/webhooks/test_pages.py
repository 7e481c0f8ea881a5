"""The webhook pages: an admin adds, edits, pauses, pings, redelivers and deletes a hook."""

from __future__ import annotations

import re

from quart import Quart
from sqlalchemy import select

from app.models import DeliveryStatus, Role, User, Webhook
from tests.factories import add_member, make_issue, make_project, make_user
from tests.outbound.webhooks.conftest import deliveries
from tests.outbound.webhooks.receiver import Receiver
from tests.pages import PASSWORD, log_in, submit, text_of


async def _people(app: Quart) -> None:
    hasher = app.extensions["account_settings"].hasher
    async with app.extensions["database"].sessionmaker() as session:
        password_hash = await hasher.hash(PASSWORD)
        owner = await make_user(session, email="owner@example.com", password_hash=password_hash)
        member = await make_user(session, email="member@example.com", password_hash=password_hash)
        project = await make_project(session, owner, key="WEB")
        await add_member(session, project, member, Role.MEMBER)
        await make_issue(session, owner, project, title="Before any hook")


async def _hook(app: Quart) -> Webhook:
    async with app.extensions["database"].sessionmaker() as session:
        return (await session.scalars(select(Webhook))).one()


async def test_an_admin_manages_a_hook_from_the_settings(app: Quart, receiver: Receiver) -> None:
    await _people(app)
    client = app.test_client()
    await log_in(client, "owner@example.com")
    settings = await text_of(await client.get("/p/WEB/settings"))
    assert "/p/WEB/settings/webhooks" in settings

    response = await submit(
        client,
        "/p/WEB/settings/webhooks",
        {"url": receiver.url, "events": "comment.added"},
    )
    assert response.status_code == 302
    hook = await _hook(app)
    assert (hook.url, hook.events, hook.active) == (receiver.url, "comment.added", True)
    page = await text_of(await client.get(response.headers["Location"]))
    assert hook.secret in page  # the admin copies it into the receiver
    assert "Nothing delivered yet." in page

    path = f"/p/WEB/settings/webhooks/{hook.id}"
    response = await submit(
        client,
        path,
        {"action": "save", "url": receiver.url, "events": "issue.created", "active": "1"},
    )
    assert response.status_code == 302
    assert (await _hook(app)).events == "issue.created"
    refused = await submit(client, path, {"action": "save", "url": receiver.url})
    assert refused.status_code == 400
    assert "Choose at least one event" in await text_of(refused)

    assert (await submit(client, f"{path}/ping")).status_code == 302
    await app.extensions["webhook_sender"].deliver_pending()
    [ping] = receiver.requests
    assert ping.json["event"] == "ping" and ping.signature_is_valid(hook.secret)
    page = await text_of(await client.get(path))
    assert "delivered" in page and "200" in page

    # Redeliver: the same body and event id, a new delivery id.
    [delivery] = await deliveries(app)
    assert (await submit(client, f"{path}/deliveries/{delivery.id}/redeliver")).status_code == 302
    await app.extensions["webhook_sender"].deliver_pending()
    first, again = receiver.requests
    assert again.body == first.body
    assert again.headers["x-issues-delivery"] != first.headers["x-issues-delivery"]
    assert [row.status for row in await deliveries(app)] == [DeliveryStatus.DELIVERED] * 2

    old_secret = hook.secret
    await submit(client, path, {"action": "new_secret"})
    assert (await _hook(app)).secret != old_secret
    await submit(client, path, {"action": "pause"})
    assert (await _hook(app)).active is False
    page = await text_of(await client.get("/p/WEB/settings/webhooks"))
    assert "paused" in page and receiver.url in page

    response = await submit(client, path, {"action": "delete"})
    assert response.status_code == 302
    async with app.extensions["database"].sessionmaker() as session:
        assert (await session.scalars(select(Webhook))).all() == []
    assert await deliveries(app) == []
    assert (await client.get(path)).status_code == 404


async def test_members_who_are_not_admins_cannot_see_hooks_or_their_secrets(
    app: Quart, receiver: Receiver
) -> None:
    await _people(app)
    owner = app.test_client()
    await log_in(owner, "owner@example.com")
    await submit(owner, "/p/WEB/settings/webhooks", {"url": receiver.url, "all_events": "1"})
    hook = await _hook(app)

    member = app.test_client()
    await log_in(member, "member@example.com")
    for path in ("/p/WEB/settings/webhooks", f"/p/WEB/settings/webhooks/{hook.id}"):
        response = await member.get(path)
        assert response.status_code == 403
        assert hook.secret not in await text_of(response)
    response = await submit(member, f"/p/WEB/settings/webhooks/{hook.id}", {"action": "delete"})
    assert response.status_code == 403
    assert (await _hook(app)).id == hook.id


async def test_a_hook_of_another_project_is_not_found_through_this_one(
    app: Quart, receiver: Receiver
) -> None:
    await _people(app)
    client = app.test_client()
    await log_in(client, "owner@example.com")
    await submit(client, "/p/WEB/settings/webhooks", {"url": receiver.url, "all_events": "1"})
    hook = await _hook(app)
    async with app.extensions["database"].sessionmaker() as session:
        owner = await session.scalar(select(User).where(User.email == "owner@example.com"))
        session.expunge(owner)
        await make_project(session, owner, key="OPS")
    response = await client.get(f"/p/OPS/settings/webhooks/{hook.id}")
    assert response.status_code == 404
    page = await text_of(await client.get("/p/OPS/settings/webhooks"))
    assert not re.search(re.escape(receiver.url), page)
