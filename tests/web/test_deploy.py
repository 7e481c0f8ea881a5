"""The Procfile's web: line, run as a platform runs it: hypercorn with hypercorn.toml; and the
start-up advice on PostgreSQL's connection limit."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app.config import normalise_database_url
from app.db import Database, create_engine, migrations
from app.web.health import Readiness

ROOT = Path(__file__).resolve().parents[2]
WEB_LINE = re.search(r"^web: (.+)$", (ROOT / "Procfile").read_text(), re.MULTILINE).group(1)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def get(port: int, path: str) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (h.split(":", 1) for h in header_lines)}
    return int(status_line.split()[1]), headers, body


@contextlib.asynccontextmanager
async def web(
    database_url: str, log: Path
) -> AsyncIterator[tuple[int, asyncio.subprocess.Process]]:
    port = free_port()
    environment = {
        **os.environ,
        "PATH": f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}",
        "PORT": str(port),
        "WEB_CONCURRENCY": "2",
        "ISSUES_CONFIG": "production",
        "SECRET_KEY": "d" * 48,
        "DATABASE_URL": database_url,
        "MAIL_BACKEND": "smtp",
        "MAIL_POLL_SECONDS": "3600",
    }
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            "bash",
            "-c",
            f"exec {WEB_LINE}",
            cwd=ROOT,
            env=environment,
            stdout=output,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield port, process
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()


async def until_answering(port: int, process: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.returncode is None:
        with contextlib.suppress(OSError, asyncio.TimeoutError, IndexError, ValueError):
            if (await get(port, "/healthz"))[0] == 200:
                return
        await asyncio.sleep(0.2)
    raise AssertionError("the server did not answer")


@pytest.fixture
def sqlite_file(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'issues.db'}"


async def test_the_web_line_serves_json_logs_without_tokens_and_stops_quickly(
    sqlite_file: str, tmp_path: Path
) -> None:
    engine = create_engine(sqlite_file)
    await migrations.upgrade(engine)
    await engine.dispose()
    log = tmp_path / "web.log"
    async with web(sqlite_file, log) as (port, process):
        await until_answering(port, process)
        status, _, body = await get(port, "/readyz")
        assert status == 200 and json.loads(body)["status"] == "ready"
        status, headers, _ = await get(port, "/auth/reset/SeCrEtToKeN.abcd.0123456789abcdefghij")
        assert status == 400
        request_id = headers["x-request-id"]
        started = time.monotonic()
        os.kill(process.pid, signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 15)
        assert time.monotonic() - started < 8  # graceful_timeout is 1 s
    lines = log.read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    [access] = [r for r in records if r.get("request_id") == request_id and "status" in r]
    assert access["path"] == "/auth/reset/[redacted]" and access["status"] == "400"
    assert "SeCrEtToKeN" not in log.read_text()
    # Two workers started.
    assert len({r["process"] for r in records if "Running on" in r["message"]}) == 2


async def test_the_server_refuses_a_database_behind_the_code(
    sqlite_file: str, tmp_path: Path
) -> None:
    log = tmp_path / "web.log"
    async with web(sqlite_file, log) as (_, process):
        # The whole server stops. (With several workers hypercorn 0.18 exits 0 even so,
        # pgjones/hypercorn#269: the systemd unit of docs/deploy.md restarts it always.)
        await asyncio.wait_for(process.wait(), 30)
    assert "run `alembic upgrade head`" in log.read_text()


@pytest.mark.postgresql_only  # the pools are PostgreSQL's
async def test_start_up_warns_when_the_pools_could_exceed_max_connections(
    database_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    database = Database(normalise_database_url(database_url), pool_size=15, max_overflow=5)
    try:
        monkeypatch.setenv("WEB_CONCURRENCY", "2")
        await Readiness(database).warn_of_a_small_connection_limit()
        assert "max_connections" not in caplog.text  # 2 x 21 of 100
        monkeypatch.setenv("WEB_CONCURRENCY", "8")
        await Readiness(database).warn_of_a_small_connection_limit()
        assert "8 workers may open 21 connections each" in caplog.text  # 168 of 100
    finally:
        await database.dispose()
