"""A hook may not point at the server itself, its network or a metadata service by default."""

from __future__ import annotations

import re

import pytest
from quart import Quart

from app.models import DeliveryStatus, Project, User
from app.outbound.webhooks.targets import RefusedTarget, TargetPolicy, check_url
from tests.factories import make_issue, make_project, make_user
from tests.mailcatcher import MailCatcher
from tests.outbound.webhooks.conftest import add_hook, deliveries, hook_app
from tests.outbound.webhooks.receiver import Receiver
from tests.pages import PASSWORD, log_in, submit, text_of

# As the testing app's BASE_URL (http://issues.test) makes it.
STRICT = TargetPolicy(allow_private=False, own_hosts=frozenset({"issues.test"}))

REFUSED = [
    "http://127.0.0.1:8080/hook",
    "http://localhost/hook",
    "http://LOCALHOST./hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/hook",
    "http://[fe80::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    # IPv4 inside IPv6: NAT64 (10.0.0.1), 6to4 (127.0.0.1), IPv4-compatible (10.0.0.1).
    "http://[64:ff9b::a00:1]/hook",
    "http://[2002:7f00:1::1]/hook",
    "http://[::a00:1]/hook",
    "http://0.0.0.0/hook",
    "http://10.1.2.3/hook",
    "http://192.168.1.20/hook",
    "http://172.16.0.5/hook",
    "http://224.0.0.1/hook",
    "https://issues.test/api/hook",
    "ftp://93.184.215.14/hook",
    "https://user:password@93.184.215.14/hook",
    "not a url",
    "",
]


@pytest.mark.parametrize("url", REFUSED)
async def test_private_and_own_targets_are_refused(url: str) -> None:
    with pytest.raises(RefusedTarget):
        await check_url(url, STRICT)


async def test_a_public_address_is_accepted() -> None:
    # An IP literal: no DNS lookup, so the test needs no network.
    assert await check_url(" https://93.184.215.14/hook ", STRICT) == "https://93.184.215.14/hook"


async def test_the_site_may_allow_private_targets() -> None:
    allowing = TargetPolicy(allow_private=True, own_hosts=frozenset({"issues.test"}))
    for url in ("http://127.0.0.1:8080/hook", "http://[::1]/hook", "http://10.1.2.3/hook"):
        assert await check_url(url, allowing) == url


async def test_the_page_refuses_a_loopback_hook_by_default(
    database_url: str, mailbox: MailCatcher
) -> None:
    app = hook_app(database_url, mailbox, WEBHOOK_ALLOW_PRIVATE_TARGETS=False)
    async with app.test_app(), app.extensions["database"].sessionmaker() as session:
        hasher = app.extensions["account_settings"].hasher
        owner = await make_user(
            session, email="owner@example.com", password_hash=await hasher.hash(PASSWORD)
        )
        await make_project(session, owner, key="WEB")
        client = app.test_client()
        await log_in(client, "owner@example.com")
        for url in ("http://127.0.0.1:9/hook", "http://169.254.169.254/", "http://issues.test/"):
            response = await submit(
                client, "/p/WEB/settings/webhooks", {"url": url, "all_events": "1"}
            )
            assert response.status_code == 400
            [error] = re.findall(r'id="field-url-error">([^<]*)<', await text_of(response))
            assert error.endswith(("points at this server.", "metadata service)."))


async def test_a_target_that_turns_private_after_saving_is_refused_at_send_time(
    app: Quart,
    session,
    owner: User,
    project: Project,
    receiver: Receiver,
    database_url: str,
    mailbox: MailCatcher,
) -> None:
    """Saved while allowed (think: DNS that pointed elsewhere then), refused when sent: the
    sender checks the address it connects to, not only the one seen when the hook was saved."""
    await add_hook(session, owner, project, receiver.url)
    await make_issue(session, owner, project)
    strict = hook_app(database_url, mailbox, WEBHOOK_ALLOW_PRIVATE_TARGETS=False)
    async with strict.test_app():
        report = await strict.extensions["webhook_sender"].deliver_pending()
    assert report.failed == 1
    assert "refused" in report.errors[0]
    assert receiver.requests == []
    [delivery] = await deliveries(app)
    assert delivery.status == DeliveryStatus.FAILED
