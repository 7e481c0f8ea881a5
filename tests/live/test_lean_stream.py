"""The event stream's lean path (blueprints/event_stream.py) through a real hypercorn server:
the same bytes as the Quart route, the same refusals, heartbeats, replay, presence, the
periodic access check, and closed streams that leave no reference cycles."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import hypercorn.asyncio
import hypercorn.config
import pytest
from quart import Quart, request

from app import create_app
from app.blueprints.event_stream import LeanEventStream
from app.live.broker import Mailbox, Subscriber
from app.live.stream import EventStream
from app.services import login_sessions
from tests.conftest import app_settings
from tests.factories import add_member, make_issue, make_project, make_user
from tests.mailcatcher import MailCatcher, free_port
from tests.waiting import eventually

REQUEST_ID = "lean-test-1"


@dataclass
class Served:
    app: Quart
    port: int
    quart_saw: list[str]  # the stream requests that reached Quart's request machinery

    @property
    def broker(self) -> Any:
        return self.app.extensions["broker"]

    def lean(self, on: bool) -> None:
        self.app.extensions["event_stream_path"].lean = on


@contextlib.asynccontextmanager
async def served(database_url: str, mailbox: MailCatcher, **settings: Any) -> AsyncIterator[Served]:
    app = create_app("testing", **app_settings(database_url, mailbox, **settings))
    quart_saw: list[str] = []

    @app.before_request
    async def note_stream_requests() -> None:
        if request.path.endswith("/events"):
            quart_saw.append(request.path)

    config = hypercorn.config.Config()
    port = free_port()
    config.bind = [f"127.0.0.1:{port}"]
    config.graceful_timeout = 1
    config.accesslog = None
    stop = asyncio.Event()
    serving = asyncio.create_task(hypercorn.asyncio.serve(app, config, shutdown_trigger=stop.wait))
    try:
        for _ in range(100):
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            await asyncio.sleep(0.05)
        yield Served(app, port, quart_saw)
    finally:
        stop.set()
        await asyncio.wait_for(serving, 10)


@dataclass
class People:
    project_key: str
    project_id: int
    owner_cookie: str
    outsider_cookie: str
    owner_session_id: int


async def people(app: Quart) -> People:
    """An owner of a private project with three issues, and someone who is not a member."""
    settings = app.extensions["account_settings"]
    async with app.extensions["database"].sessionmaker() as session:
        owner = await make_user(session, email="owner@example.com", display_name="Owner")
        outsider = await make_user(session, email="out@example.com", display_name="Outsider")
        member = await make_user(session, email="member@example.com", display_name="Member")
        project = await make_project(session, owner, key="LIVE")
        await add_member(session, project, member)
        for _ in range(3):
            await make_issue(session, owner, project)  # seqs 2, 3, 4
        owner_secret = await login_sessions.start_session(session, settings, owner, remember=False)
        outsider_secret = await login_sessions.start_session(
            session, settings, outsider, remember=False
        )
        [owner_session] = await login_sessions.active_sessions(session, settings, owner.id)
        project_id, owner_session_id = project.id, owner_session.id
    async with app.app_context():
        [auth] = app.extensions["QUART_AUTH"]
        name = app.config["QUART_AUTH_COOKIE_NAME"]
        owner_cookie = f"{name}={auth.dump_token(owner_secret, app=app)}"
        outsider_cookie = f"{name}={auth.dump_token(outsider_secret, app=app)}"
    return People("LIVE", project_id, owner_cookie, outsider_cookie, owner_session_id)


@dataclass
class Opened:
    status_line: bytes
    headers: list[tuple[str, str]]
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    body: bytes = b""
    finished: bool = False

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def comparable_headers(self) -> list[tuple[str, str]]:
        # The date changes; a new session cookie's value is random.
        return [
            (k, v.split("=", 1)[0] if k.lower() == "set-cookie" else v)
            for k, v in self.headers
            if k.lower() != "date"
        ]

    async def read_until(self, text: bytes, wait: float = 5) -> bytes:
        async with asyncio.timeout(wait):
            while text not in self.body and not self.finished:
                await self._chunk()
        assert text in self.body, self.body
        return self.body

    async def until_finished(self, wait: float = 5) -> None:
        async with asyncio.timeout(wait):
            while not self.finished:
                await self._chunk()

    async def _chunk(self) -> None:
        if self.header("Transfer-Encoding") != "chunked":  # a refusal: a whole page
            self.body = await self.reader.readexactly(int(self.header("Content-Length") or 0))
            self.finished = True
            return
        size = int((await self.reader.readline()).split(b";")[0] or b"0", 16)
        if size == 0:
            self.finished = True
            return
        self.body += (await self.reader.readexactly(size + 2))[:-2]

    def close(self) -> None:
        self.writer.close()


async def open_stream(port: int, path: str, headers: dict[str, str]) -> Opened:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", f"X-Request-ID: {REQUEST_ID}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    await writer.drain()
    async with asyncio.timeout(5):
        status_line = await reader.readline()
        answer_headers = []
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            answer_headers.append((name.strip(), value.strip()))
    return Opened(status_line, answer_headers, reader, writer)


@contextlib.asynccontextmanager
async def stream(port: int, path: str, headers: dict[str, str]) -> AsyncIterator[Opened]:
    opened = await open_stream(port, path, headers)
    try:
        yield opened
    finally:
        opened.close()


async def test_the_lean_path_writes_the_bytes_the_quart_route_writes(
    database_url: str, mailbox: MailCatcher
) -> None:
    async with served(database_url, mailbox, SSE_HEARTBEAT_SECONDS=0.3) as server:
        team = await people(server.app)
        answers = {}
        for lean in (True, False):
            server.lean(lean)
            path = f"/p/{team.project_key}/events?view=board"
            headers = {"Cookie": team.owner_cookie, "Last-Event-ID": "2"}
            async with stream(server.port, path, headers) as opened:
                # The replay (3, 4), the presence event, then a heartbeat.
                await opened.read_until(b": ping\n\n")
                answers[lean] = opened
            assert await eventually(lambda: server.broker.subscriber_count == 0)
        lean, through_quart = answers[True], answers[False]
        assert lean.status_line == through_quart.status_line == b"HTTP/1.1 200 \r\n"
        assert lean.comparable_headers() == through_quart.comparable_headers()
        assert lean.header("x-request-id") == REQUEST_ID
        assert lean.body.split(b": ping")[0] == through_quart.body.split(b": ping")[0]
        assert lean.body.startswith(b"retry: 3000\n: connected\n\nid: 3\nevent: issue.created\n")
        assert b"id: 4\n" in lean.body and b'"view": "board"' in lean.body
        # The lean stream never reached Quart's request handling; the other one did.
        assert server.quart_saw == [f"/p/{team.project_key}/events"]


@pytest.mark.parametrize("who", ["no cookie", "forged cookie", "ended session", "outsider"])
async def test_refusals_are_quart_s_own_answers(
    database_url: str, mailbox: MailCatcher, who: str
) -> None:
    async with served(database_url, mailbox) as server:
        team = await people(server.app)
        if who == "ended session":
            async with server.app.extensions["database"].sessionmaker() as session:
                await login_sessions.end_session(session, team.owner_session_id)
        cookie = {
            "no cookie": None,
            "forged cookie": team.owner_cookie[:-4] + "AAAA",
            "ended session": team.owner_cookie,
            "outsider": team.outsider_cookie,
        }[who]
        answers = {}
        for lean in (True, False):
            server.lean(lean)
            headers = {"Cookie": cookie} if cookie else {}
            async with stream(server.port, f"/p/{team.project_key}/events", headers) as opened:
                await opened.until_finished()
                answers[lean] = opened
        lean, through_quart = answers[True], answers[False]
        assert lean.status_line == through_quart.status_line
        assert lean.comparable_headers() == through_quart.comparable_headers()
        if who != "outsider":  # (the 404 page carries a new CSRF token each time)
            assert lean.body == through_quart.body
        if who == "outsider":
            assert lean.status_line.startswith(b"HTTP/1.1 404")  # a private project stays hidden
        else:
            assert lean.status_line.startswith(b"HTTP/1.1 302")
            assert lean.header("Location") == f"/auth/login?next=/p/{team.project_key}/events"
        if who == "ended session":  # the dead cookie is deleted, as on every page
            assert (lean.header("Set-Cookie") or "").startswith("issues_auth=;")
        assert server.broker.subscriber_count == 0
        # Both refusals reached Quart (which answered them).
        assert len(server.quart_saw) == 2


async def test_a_stream_ends_when_its_client_leaves_and_when_its_session_ends(
    database_url: str, mailbox: MailCatcher
) -> None:
    async with served(
        database_url, mailbox, SSE_HEARTBEAT_SECONDS=0.1, SSE_RECHECK_SECONDS=0.2
    ) as server:
        team = await people(server.app)
        path = f"/p/{team.project_key}/events?view=board"
        async with stream(server.port, path, {"Cookie": team.owner_cookie}) as leaving:
            await leaving.read_until(b": ping")
            assert server.broker.subscriber_count == 1
            assert server.broker.presence.local
        # The client went away: hypercorn says so to receive(), and the stream ends.
        assert await eventually(lambda: server.broker.subscriber_count == 0)
        assert await eventually(lambda: not server.broker.presence.local)

        async with stream(server.port, path, {"Cookie": team.owner_cookie}) as staying:
            await staying.read_until(b": ping")
            async with server.app.extensions["database"].sessionmaker() as session:
                await login_sessions.end_session(session, team.owner_session_id)
            # The periodic check closes it; the answer ends properly (chunked, to its end).
            await staying.until_finished()
        assert server.broker.subscriber_count == 0
        assert server.quart_saw == []


async def test_a_client_past_the_log_is_told_to_resync_and_the_stream_ends(
    database_url: str, mailbox: MailCatcher
) -> None:
    async with served(database_url, mailbox) as server:
        team = await people(server.app)
        headers = {"Cookie": team.owner_cookie}
        path = f"/p/{team.project_key}/events?last_event_id=999"
        async with stream(server.port, path, headers) as opened:
            await opened.until_finished()
        assert opened.body.endswith(b"event: resync\ndata: {}\n\n")
        assert await eventually(lambda: server.broker.subscriber_count == 0)


def _ours(thing: object) -> bool:
    if type(thing) in (weakref.ProxyType, weakref.CallableProxyType):
        return False  # a proxy to what is gone: isinstance would raise ReferenceError
    if isinstance(thing, EventStream | Subscriber | Mailbox | LeanEventStream):
        return True
    code = getattr(thing, "cr_code", None) or getattr(thing, "ag_code", None)
    code = code or getattr(thing, "f_code", None)
    filename = getattr(code, "co_filename", "")
    return "app/live/" in filename or "app/blueprints/event_stream" in filename


async def test_closed_streams_leave_no_reference_cycles(
    database_url: str, mailbox: MailCatcher
) -> None:
    """What a closed stream leaves must go with its last reference: cycles would wait for a
    full collection, the pass that stalls a fan-out in a worker holding thousands."""
    async with served(database_url, mailbox, SSE_HEARTBEAT_SECONDS=0.05) as server:
        team = await people(server.app)
        headers = {"Cookie": team.owner_cookie}
        gc.collect()
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            for n in range(10):
                # Left by the client (after heartbeats), or ended by the server (resync).
                last_id = "999" if n % 2 else "2"
                path = f"/p/{team.project_key}/events?view=board&last_event_id={last_id}"
                async with stream(server.port, path, headers) as opened:
                    await opened.read_until(b"resync" if n % 2 else b": ping\n\n: ping")
            assert await eventually(lambda: server.broker.subscriber_count == 0)
            await asyncio.sleep(0.2)  # the presence debounce, the watchers' last steps
            gc.collect()
            left = [thing for thing in gc.garbage if _ours(thing)]
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
        assert left == []
