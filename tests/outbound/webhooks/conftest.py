"""Fixtures for webhooks: a live receiver on loopback, and apps that may send to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
from quart import Quart
from sqlalchemy import select

from app import create_app
from app.models import Project, User, WebhookDelivery
from app.outbound.webhooks import TargetPolicy
from app.services import project_webhooks
from tests.conftest import app_settings
from tests.factories import make_project, make_user
from tests.mailcatcher import MailCatcher
from tests.outbound.webhooks.receiver import Receiver

# Receivers in tests listen on 127.0.0.1, which the site must allow.
LOOPBACK = TargetPolicy(allow_private=True)


def hook_app(database_url: str, mailbox: MailCatcher, **overrides: Any) -> Quart:
    settings = {"WEBHOOK_ALLOW_PRIVATE_TARGETS": True, "RATE_LIMIT_ENABLED": False}
    return create_app("testing", **app_settings(database_url, mailbox, **settings | overrides))


@pytest_asyncio.fixture
async def receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    await receiver.start()
    yield receiver
    await receiver.stop()


@pytest_asyncio.fixture
async def app(database_url: str, mailbox: MailCatcher) -> AsyncIterator[Quart]:
    app = hook_app(database_url, mailbox)
    async with app.test_app() as test_app:
        yield test_app.app


@pytest_asyncio.fixture
async def owner(session) -> User:
    return await make_user(session, email="owner@example.com")


@pytest_asyncio.fixture
async def project(session, owner: User) -> Project:
    return await make_project(session, owner, key="WEB")


async def add_hook(session, owner: User, project: Project, url: str, events=("*",)):
    return await project_webhooks.create_webhook(
        session, owner, project.id, url=url, events=events, policy=LOOPBACK
    )


async def deliveries(app: Quart) -> list[WebhookDelivery]:
    async with app.extensions["database"].sessionmaker() as session:
        return list(await session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))
