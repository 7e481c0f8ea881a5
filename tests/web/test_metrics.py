"""/metrics for Prometheus: every worker counted, only for allowed clients, queues from the
database."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from pathlib import Path

import pytest
from quart import Quart
from quart.typing import TestClientProtocol as Client
from sqlalchemy.ext.asyncio import AsyncSession

from app import create_app
from app.db import utcnow
from app.models import MailStatus, OutboxMessage
from app.web.metrics import parse_allowed, server_directory
from tests.conftest import app_settings
from tests.mailcatcher import MailCatcher
from tests.servers import Subscriber, http, make_team, start_worker, stop, subscribed, tail

# The test client has no peer address; a trusted proxy's header names the client.
FROM_LOOPBACK = {"X-Forwarded-For": "127.0.0.1"}
FROM_OUTSIDE = {"X-Forwarded-For": "198.51.100.7"}


def sample(exposition: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus's text format (0 when it is absent)."""
    for line in exposition.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, value = line.rsplit(" ", 1)
        found = dict(re.findall(r'(\w+)="([^"]*)"', head))
        if head.split("{")[0] == name and found == labels:
            return float(value)
    return 0.0


@pytest.fixture
async def proxied_app(database_url: str, mailbox: MailCatcher) -> Quart:
    app = create_app("testing", **app_settings(database_url, mailbox, TRUST_PROXY_COUNT=1))
    async with app.test_app() as test_app:
        yield test_app.app


async def scrape(client: Client) -> str:
    answer = await client.get("/metrics", headers=FROM_LOOPBACK)
    assert answer.status_code == 200
    assert answer.content_type.startswith("text/plain; version=0.0.4")
    return (await answer.get_data()).decode()


async def test_metrics_are_a_404_to_clients_outside_the_allowed_networks(
    proxied_app: Quart,
) -> None:
    client = proxied_app.test_client()
    assert (await client.get("/metrics", headers=FROM_OUTSIDE)).status_code == 404
    assert (await client.get("/metrics")).status_code == 404  # no address at all: not allowed
    assert (await client.get("/metrics", headers=FROM_LOOPBACK)).status_code == 200


def test_a_bad_allow_list_is_a_configuration_error_that_names_the_setting() -> None:
    with pytest.raises(Exception, match="METRICS_ALLOW"):
        parse_allowed("127.0.0.1, not-an-address")
    assert [str(n) for n in parse_allowed("10.0.0.0/8, ::1")] == ["10.0.0.0/8", "::1/128"]


async def test_requests_are_counted_by_route_template_and_status(proxied_app: Quart) -> None:
    client = proxied_app.test_client()
    before = await scrape(client)
    for _ in range(3):
        await client.get("/healthz")
    await client.get("/no/such/page")
    after = await scrape(client)

    def grew(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert grew("issues_http_requests_total", route="/healthz", method="GET", status="200") == 3
    assert grew("issues_http_requests_total", route="unmatched", method="GET", status="404") == 1
    assert grew("issues_http_request_duration_seconds_count", route="/healthz", method="GET") == 3


async def test_the_delivery_queues_come_from_the_database(
    proxied_app: Quart, session: AsyncSession
) -> None:
    now = utcnow()

    def message(status: MailStatus, due: timedelta) -> OutboxMessage:
        return OutboxMessage(
            to_address="ann@example.com",
            subject="Hello",
            text_body="Hello",
            html_body="<p>Hello</p>",
            template="verify_email",
            status=status.value,
            next_attempt_at=now + due,
        )

    session.add_all(
        [
            message(MailStatus.PENDING, -timedelta(minutes=10)),
            message(MailStatus.PENDING, timedelta(minutes=5)),  # waiting for its retry
            message(MailStatus.FAILED, -timedelta(hours=1)),
            message(MailStatus.SENT, -timedelta(hours=1)),
        ]
    )
    await session.commit()
    exposition = await scrape(proxied_app.test_client())
    assert sample(exposition, "issues_queue_pending", queue="mail") == 2
    assert sample(exposition, "issues_queue_failed", queue="mail") == 1
    assert 590 <= sample(exposition, "issues_queue_oldest_due_seconds", queue="mail") < 700
    assert sample(exposition, "issues_queue_pending", queue="webhooks") == 0


# --- A real server of two workers -------------------------------------------------------------


@pytest.mark.postgresql_only
async def test_one_scrape_counts_both_workers_of_a_server(
    database_url: str, tmp_path: Path
) -> None:
    team = await make_team(database_url, issue_count=1)
    metrics_dir = tmp_path / "metrics"
    worker = await start_worker(
        database_url,
        tmp_path / "server.log",
        settings={"METRICS_DIR": str(metrics_dir)},
        workers=2,
    )
    try:
        # Each request on a new connection: the kernel hands them to either worker.
        answers = await asyncio.gather(*(http(worker.port, "GET", "/", {}) for _ in range(40)))
        assert {answer.status for answer in answers} == {200}
        stream = Subscriber("S", worker.port, f"/p/{team.project_key}/events", team.headers())
        async with subscribed([stream]):
            during = (await http(worker.port, "GET", "/metrics", {})).body.decode()
        await asyncio.sleep(0.5)  # the server sees the stream's connection close
        after = (await http(worker.port, "GET", "/metrics", {})).body.decode()
        files = sorted(
            path.name for path in server_directory(metrics_dir, worker.process.pid).iterdir()
        )
    finally:
        await stop(worker)
    logs = tail(worker.log)
    assert sample(during, "issues_worker_processes") == 2, logs
    assert sample(after, "issues_http_requests_total", route="/", method="GET", status="200") == 40
    assert sample(during, "issues_event_streams_open") == 1
    assert sample(after, "issues_event_streams_open") == 0
    assert sample(during, "issues_db_pool_capacity") == 2 * (15 + 5)
    # One counter file per worker process that counted: both wrote into the server's folder.
    assert len([name for name in files if name.startswith("gauge_livesum_")]) == 2, files
