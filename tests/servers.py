"""Real hypercorn servers for a test, a browser's HTTP and EventSource over raw sockets, a
logged-in team, the event log, and the local PostgreSQL cluster to restart."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from app import create_app
from app.db import create_engine
from app.models import Activity
from app.services import issues, login_sessions, projects
from tests.factories import make_project, make_user

ROOT = Path(__file__).resolve().parents[1]

WORKER_SETTINGS = {
    "ISSUES_CONFIG": "testing",
    # A ping soon after the replay tells a client that its stream is live.
    "SSE_HEARTBEAT_SECONDS": "0.5",
    # Streams re-check access often, so some of them fail and end during the outage.
    "SSE_RECHECK_SECONDS": "1",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- HTTP over raw sockets (no HTTP client library in the test environment) -------------------


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key.lower() == name.lower()), None)


def _request_head(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, list[tuple[str, str]]]:
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionResetError("no answer")
    headers = []
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers.append((name.strip(), value.strip()))
    return int(status_line.split()[1]), headers


async def http(
    port: int, method: str, path: str, headers: dict[str, str], body: str = ""
) -> Answer:
    """One request on its own connection, read to the end (the server closes it)."""
    async with asyncio.timeout(10):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            sent = {**headers, "Connection": "close", "Content-Length": str(len(body))}
            writer.write(_request_head(method, path, sent) + body.encode())
            status, answer_headers = await _read_head(reader)
            return Answer(status, answer_headers, await reader.read())
        finally:
            writer.close()


# --- The cluster of workers -------------------------------------------------------------------


@dataclass
class Worker:
    port: int
    process: asyncio.subprocess.Process
    log: Path

    def server_pid(self) -> int:
        """The process that serves: hypercorn's parent spawns one worker child (beside
        multiprocessing's resource tracker)."""
        for child in (Path("/proc") / str(self.process.pid) / "task").glob("*/children"):
            for pid in child.read_text().split():
                command = (Path("/proc") / pid / "cmdline").read_bytes()
                if b"spawn_main" in command and b"resource_tracker" not in command:
                    return int(pid)
        raise AssertionError(f"hypercorn {self.process.pid} has no worker process")


async def start_worker(
    database_url: str,
    log: Path,
    port: int | None = None,
    *,
    listen_fd: int | None = None,
    settings: dict[str, str] | None = None,
    workers: int = 1,
) -> Worker:
    """One hypercorn server (of `workers` worker processes) on `port`, or on an inherited
    listening socket bound to `port` (as systemd's socket activation hands it over:
    `--bind fd://N`). Returns once it answers."""
    environment = {
        **os.environ,
        **WORKER_SETTINGS,
        **(settings or {}),
        "DATABASE_URL": database_url,
    }
    port = port or free_port()
    bind = f"127.0.0.1:{port}" if listen_fd is None else f"fd://{listen_fd}"
    with log.open("ab") as output:
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "hypercorn", "app:create_app()"),
            *("--bind", bind, "--graceful-timeout", "1", "--workers", str(workers)),
            cwd=ROOT,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            pass_fds=() if listen_fd is None else (listen_fd,),
            # Its own process group: hypercorn's worker child can be ended with it.
            start_new_session=True,
        )
    worker = Worker(port, process, log)
    try:
        await until_healthy(worker)
    except BaseException:
        await stop(worker)
        raise
    return worker


@contextlib.asynccontextmanager
async def serve(
    database_url: str,
    log_dir: Path,
    count: int = 2,
    *,
    settings: dict[str, str] | None = None,
) -> AsyncIterator[list[Worker]]:
    """`count` separate hypercorn servers (one worker each) on free ports, ready to answer.
    The list is the test's to change (a restarted worker replaces its old self there); what
    it holds at the end is stopped."""
    workers: list[Worker] = []
    try:
        workers += await asyncio.gather(
            *(
                start_worker(database_url, log_dir / f"worker{number}.log", settings=settings)
                for number in range(count)
            )
        )
        yield workers
    finally:
        await asyncio.gather(*(stop(worker) for worker in workers))


async def until_healthy(worker: Worker, wait: float = 20) -> None:
    """The socket is bound before the app has started; /healthz answers once it has."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if worker.process.returncode is not None:
            break
        with contextlib.suppress(OSError, TimeoutError):
            if (await http(worker.port, "GET", "/healthz", {})).status == 200:
                return
        await asyncio.sleep(0.1)
    raise AssertionError(f"worker on {worker.port} never became healthy:\n{tail(worker.log)}")


async def stop(worker: Worker) -> None:
    if worker.process.returncode is None:
        worker.process.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(worker.process.wait(), 10)
        except TimeoutError:
            os.killpg(worker.process.pid, signal.SIGKILL)
            await worker.process.wait()


def rss_kib(pid: int) -> int:
    """A process's resident memory, from /proc."""
    for line in (Path("/proc") / str(pid) / "status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def tail(log: Path, lines: int = 30) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


# --- A subscriber that behaves like EventSource -----------------------------------------------


@dataclass
class Received:
    seq: int
    kind: str
    data: dict[str, Any]


@dataclass(eq=False)
class Subscriber:
    """Reads a worker's event stream; when the stream ends or fails it reconnects with the
    last id it saw (as EventSource does), so what it received can be compared with the log."""

    name: str
    port: int
    path: str
    headers: dict[str, str]
    last_id: int | None = None
    received: list[Received] = field(default_factory=list)
    streams: int = 0  # answered with 200
    refused: int = 0  # answered with an error (the database was away)
    broken: int = 0  # connection failed or cut mid-stream
    resyncs: int = 0
    # When each event arrived (time.monotonic()), to measure latency.
    arrived_at: dict[int, float] = field(default_factory=dict)
    live: asyncio.Event = field(default_factory=asyncio.Event)
    progressed: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        while True:
            try:
                await self._one_stream()
            except (OSError, asyncio.IncompleteReadError, ValueError):
                self.broken += 1
            await asyncio.sleep(0.2)  # EventSource waits `retry` ms; less here

    async def _one_stream(self) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port, limit=1 << 20)
        try:
            headers = {**self.headers, "Accept": "text/event-stream"}
            if self.last_id is not None:
                headers["Last-Event-ID"] = str(self.last_id)
            writer.write(_request_head("GET", self.path, headers))
            await writer.drain()
            status, answer_headers = await _read_head(reader)
            if status != 200:
                self.refused += 1
                return
            self.streams += 1
            chunked = ("Transfer-Encoding", "chunked") in answer_headers
            buffer = b""
            while chunk := await _next_chunk(reader, chunked):
                buffer += chunk
                while b"\n\n" in buffer:
                    block, buffer = buffer.split(b"\n\n", 1)
                    self._take(block.decode())
        finally:
            writer.close()

    def _take(self, block: str) -> None:
        if block.startswith(": ping"):
            self.live.set()  # the replay is over: what comes now is live
            return
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if fields.get("event") == "resync":
            self.resyncs += 1
        elif "id" in fields:
            seq = int(fields["id"])
            self.received.append(Received(seq, fields["event"], json.loads(fields["data"])))
            self.arrived_at.setdefault(seq, time.monotonic())
            self.last_id = seq
            self.progressed.set()

    async def until_seen(self, seq: int, wait: float) -> bool:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                while (self.last_id or 0) < seq:
                    self.progressed.clear()
                    await self.progressed.wait()
        return (self.last_id or 0) >= seq


async def _next_chunk(reader: asyncio.StreamReader, chunked: bool) -> bytes:
    """The next piece of the body; b"" at its end."""
    if not chunked:
        return await reader.read(1 << 16)
    size_line = await reader.readline()
    if not size_line.strip():
        return b""
    size = int(size_line.split(b";")[0], 16)
    if size == 0:
        return b""
    return (await reader.readexactly(size + 2))[:-2]


@contextlib.asynccontextmanager
async def subscribed(subscribers: list[Subscriber], wait: float = 10) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(subscriber.run()) for subscriber in subscribers]
    try:
        await asyncio.wait_for(asyncio.gather(*(s.live.wait() for s in subscribers)), wait)
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


# --- A logged-in browser: its cookies and CSRF token ------------------------------------------


@dataclass
class Team:
    project_id: int
    project_key: str
    issue_ids: list[int]
    done_status_id: int
    login_cookie: str
    cookie: str = ""
    csrf: str = ""

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Cookie": self.cookie or self.login_cookie, **extra}

    async def open_board(self, worker: Worker) -> None:
        """Get the signed session cookie and CSRF token a board page gives (any worker's
        are good on the others: they share the secret key)."""
        board = await http(worker.port, "GET", f"/p/{self.project_key}/board", self.headers())
        assert board.status == 200, board.body[:500]
        session_cookie = board.header("set-cookie")
        assert session_cookie is not None
        self.cookie = f"{self.login_cookie}; {session_cookie.split(';', 1)[0]}"
        token = re.search(rb'data-csrf="([^"]+)"', board.body)
        assert token is not None
        self.csrf = token.group(1).decode()

    def board_streams(self, workers: list[Worker], per_worker: int) -> list[Subscriber]:
        """`per_worker` streams of the board's events on each worker (A0.., B0.., ...), each from
        the first event on."""
        path = f"/p/{self.project_key}/events"
        return [
            Subscriber(f"{name}{n}", worker.port, path, self.headers(), 0)
            for name, worker in zip("ABCDEFGH", workers, strict=False)
            for n in range(per_worker)
        ]

    def form(self, **extra: str) -> dict[str, str]:
        return self.headers(
            **{"Content-Type": "application/x-www-form-urlencoded", "X-CSRF-Token": self.csrf},
            **extra,
        )


async def make_team(database_url: str, issue_count: int) -> Team:
    """An owner, a project with issues, and the owner's login cookie (made as the app does)."""
    app = create_app("testing", DATABASE_URL=database_url)
    database = app.extensions["database"]
    try:
        async with database.sessionmaker() as session:
            owner = await make_user(session, email="owner@example.com", display_name="Owner")
            project = await make_project(session, owner, key="LIVE")
            created = [
                await issues.create_issue(session, owner, project.id, title=f"Card {n}")
                for n in range(issue_count)
            ]
            done = (await projects.workflow(session, project.id))[-1]
            secret = await login_sessions.start_session(
                session, app.extensions["account_settings"], owner, remember=False
            )
        async with app.app_context():
            [auth] = app.extensions["QUART_AUTH"]  # the app's own: a second one warns
            token = auth.dump_token(secret, app=app)
    finally:
        await database.dispose()
    return Team(
        project.id,
        project.key,
        [issue.id for issue in created],
        done.id,
        f"{app.config['QUART_AUTH_COOKIE_NAME']}={token}",
    )


async def all_caught_up(
    database_url: str, team: Team, subscribers: list[Subscriber], wait: float = 30
) -> tuple[list[tuple[int, str]], float]:
    """The project's whole event log once the writing has stopped, after every subscriber has
    seen its last event (or `wait` ran out), and how many seconds that took."""
    written_at = time.monotonic()
    log = await event_log(database_url, team.project_id)
    last_seq = log[-1][0]
    await asyncio.gather(*(s.until_seen(last_seq, wait=wait) for s in subscribers))
    return log, time.monotonic() - written_at


async def event_log(database_url: str, project_id: int) -> list[tuple[int, str]]:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                select(Activity.seq, Activity.kind)
                .where(Activity.project_id == project_id)
                .order_by(Activity.seq)
            )
            return [(seq, kind) for seq, kind in rows]
    finally:
        await engine.dispose()


# --- The local PostgreSQL cluster ------------------------------------------------------------


def postgres_cluster_command(action: str) -> list[str]:
    """pg_ctlcluster for the newest installed PostgreSQL (as CI picks it), as root."""
    versions = sorted(os.listdir("/etc/postgresql"), key=lambda v: [int(p) for p in v.split(".")])
    command = ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", action]
    return command if os.geteuid() == 0 else ["sudo", "-n", *command]


def restart_postgres(host: str, port: int) -> float:
    """Restart the cluster and wait until it accepts connections; the seconds it took."""
    started = time.monotonic()
    subprocess.run(postgres_cluster_command("restart"), check=True, capture_output=True)  # noqa: S603
    for _ in range(300):
        ready = subprocess.run(  # noqa: S603
            ["pg_isready", "-q", "-h", host, "-p", str(port)],  # noqa: S607
            check=False,
        )
        if ready.returncode == 0:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("PostgreSQL did not come back within 30 s")
    return time.monotonic() - started
