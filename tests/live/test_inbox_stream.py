"""The header's unread count through real hypercorn servers: a notification written through
one worker reaches a count stream on another (PostgreSQL's NOTIFY), and on SQLite's single
server the after-commit hook does it."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.engine import make_url

from app import create_app
from app.models import Membership, User
from app.services import login_sessions
from tests.factories import make_user
from tests.live.test_lean_stream import people, served, stream
from tests.mailcatcher import MailCatcher
from tests.servers import Team, _next_chunk, _read_head, _request_head, http, make_team, serve, tail
from tests.waiting import eventually


async def second_member(database_url: str, team: Team) -> tuple[Team, int]:
    """Another member of the team's project, logged in (a Team seen from their side), and the
    owner's id."""
    app = create_app("testing", DATABASE_URL=database_url)
    database = app.extensions["database"]
    try:
        async with database.sessionmaker() as session:
            owner_id = await session.scalar(
                select(User.id).where(User.email == "owner@example.com")
            )
            bob = await make_user(session, email="bob@example.com", display_name="Bob")
            session.add(Membership(project_id=team.project_id, user_id=bob.id, role="member"))
            await session.commit()
            secret = await login_sessions.start_session(
                session, app.extensions["account_settings"], bob, remember=False
            )
        async with app.app_context():
            [auth] = app.extensions["QUART_AUTH"]
            token = auth.dump_token(secret, app=app)
    finally:
        await database.dispose()
    bob_team = Team(
        team.project_id,
        team.project_key,
        team.issue_ids,
        team.done_status_id,
        f"{app.config['QUART_AUTH_COOKIE_NAME']}={token}",
    )
    return bob_team, owner_id


@contextlib.asynccontextmanager
async def count_stream(port: int, headers: dict[str, str]) -> AsyncIterator[asyncio.Queue[int]]:
    """The counts a worker's /inbox/events sends, as they come."""
    counts: asyncio.Queue[int] = asyncio.Queue()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(_request_head("GET", "/inbox/events", {**headers, "Accept": "text/event-stream"}))
    await writer.drain()
    status, answer_headers = await _read_head(reader)
    assert status == 200
    assert ("content-type", "text/event-stream") in [(k.lower(), v) for k, v in answer_headers]
    chunked = ("Transfer-Encoding", "chunked") in answer_headers

    async def read() -> None:
        buffer = b""
        while chunk := await _next_chunk(reader, chunked):
            buffer += chunk
            while b"\n\n" in buffer:
                block, buffer = buffer.split(b"\n\n", 1)
                lines = dict(
                    line.split(": ", 1) for line in block.decode().splitlines() if ": " in line
                )
                if lines.get("event") == "count":
                    counts.put_nowait(json.loads(lines["data"])["unread"])

    task = asyncio.create_task(read())
    try:
        yield counts
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        writer.close()


async def test_a_notification_through_one_worker_updates_a_count_stream_on_another(
    database_url: str, tmp_path: Path
) -> None:
    postgres = make_url(database_url).get_backend_name() == "postgresql"
    owner = await make_team(database_url, issue_count=0)
    bob, owner_id = await second_member(database_url, owner)
    async with serve(database_url, tmp_path, count=2 if postgres else 1) as workers:
        writer_worker, reader_worker = workers[0], workers[-1]
        await bob.open_board(writer_worker)
        await owner.open_board(reader_worker)
        async with count_stream(reader_worker.port, owner.headers()) as counts:
            assert await asyncio.wait_for(counts.get(), 5) == 0
            created = await http(
                writer_worker.port,
                "POST",
                f"/p/{owner.project_key}/issues/new",
                bob.form(),
                urlencode({"title": "For the owner", "assignee": str(owner_id)}),
            )
            assert created.status == 302, created.body[:500]
            logs = f"\n{tail(writer_worker.log)}\n{tail(reader_worker.log)}"
            assert await asyncio.wait_for(counts.get(), 5) == 1, logs
            # Read on the writer's worker: the stream on the other one hears of it too.
            read_all = await http(writer_worker.port, "POST", "/inbox/read-all", owner.form())
            assert read_all.status == 302, read_all.body[:500]
            assert await asyncio.wait_for(counts.get(), 5) == 0


# --- The lean path (decision 0014) serves the count stream too ------------------------------


async def test_the_lean_count_stream_writes_the_bytes_the_quart_route_writes(
    database_url: str, mailbox: MailCatcher
) -> None:
    async with served(database_url, mailbox, SSE_HEARTBEAT_SECONDS=0.3) as server:
        team = await people(server.app)
        inbox_broker = server.app.extensions["inbox_broker"]
        answers = {}
        for lean in (True, False):
            server.lean(lean)
            async with stream(
                server.port, "/inbox/events", {"Cookie": team.owner_cookie}
            ) as opened:
                await opened.read_until(b": ping\n\n")
                answers[lean] = opened
            assert await eventually(lambda: inbox_broker.subscriber_count == 0)
        lean, through_quart = answers[True], answers[False]
        assert lean.status_line == through_quart.status_line == b"HTTP/1.1 200 \r\n"
        assert lean.comparable_headers() == through_quart.comparable_headers()
        assert lean.body.split(b": ping")[0] == through_quart.body.split(b": ping")[0]
        assert lean.body.startswith(
            b'retry: 3000\nevent: count\ndata: {"unread":0,"label":"0"}\n\n'
        )
        assert server.quart_saw == ["/inbox/events"]  # only the one sent through Quart

        # Refused (no login) by Quart's own answer, on either path.
        server.lean(True)
        async with stream(server.port, "/inbox/events", {}) as refused:
            await refused.until_finished()
        assert refused.status_line.startswith(b"HTTP/1.1 302")
        assert refused.header("Location") == "/auth/login?next=/inbox/events"


async def test_the_lean_count_stream_ends_when_its_client_leaves_or_its_session_ends(
    database_url: str, mailbox: MailCatcher
) -> None:
    async with served(
        database_url, mailbox, SSE_HEARTBEAT_SECONDS=0.1, SSE_RECHECK_SECONDS=0.2
    ) as server:
        team = await people(server.app)
        inbox_broker = server.app.extensions["inbox_broker"]
        async with stream(server.port, "/inbox/events", {"Cookie": team.owner_cookie}) as leaving:
            await leaving.read_until(b": ping")
            assert inbox_broker.subscriber_count == 1
        assert await eventually(lambda: inbox_broker.subscriber_count == 0)

        async with stream(server.port, "/inbox/events", {"Cookie": team.owner_cookie}) as staying:
            await staying.read_until(b": ping")
            async with server.app.extensions["database"].sessionmaker() as session:
                await login_sessions.end_session(session, team.owner_session_id)
            await staying.until_finished()  # closed by the periodic check, properly ended
        assert inbox_broker.subscriber_count == 0
        assert server.quart_saw == []
