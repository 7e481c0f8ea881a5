"""Serving the app and the ceiling with hypercorn on loopback, and logging bench users in."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from quart import Quart

from app.models import User
from app.services import login_sessions

ROOT = Path(__file__).resolve().parents[1]
APP_TARGET = "app:create_app('testing', RATE_LIMIT_ENABLED=False)"
CEILING_TARGET = "bench.ceiling:create_app()"
# The same for both servers, so that the ceiling is the stack's own under these settings.
HYPERCORN_SETTINGS = ("--backlog", "4096", "--graceful-timeout", "1")
REQUEST_TIMEOUT = 30.0
BOARD_SIZE = 500  # the board benchmark's project holds about this many issues
# What the pages carry that a user acts on: the board's cards and the issue page's version.
CARD = re.compile(rb'data-issue-id="(\d+)" data-key="[^"]*" data-version="(\d+)"')
VERSION_INPUT = re.compile(rb'name="version" value="(\d+)"')


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log: Path  # hypercorn's stderr: its start-up lines and any traceback


def spawn(target: str, workers: int, environment: dict[str, str]) -> Server:
    """Start hypercorn serving `target` on a free loopback port (not yet listening)."""
    port = free_port()
    log = Path(tempfile.mkstemp(prefix="bench-hypercorn-", suffix=".log")[1])
    command = [sys.executable, "-m", "hypercorn", target, "--bind", f"127.0.0.1:{port}"]
    with log.open("wb") as stderr:
        process = subprocess.Popen(  # noqa: S603  (our hypercorn on loopback)
            [*command, "--workers", str(workers), *HYPERCORN_SETTINGS],
            cwd=ROOT,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    return Server(process, port, log)


async def start_server(target: str, workers: int, environment: dict[str, str]) -> Server:
    server = spawn(target, workers, environment)
    for _ in range(300):
        if server.process.poll() is not None:
            raise RuntimeError(f"{target} exited: see {server.log}")
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=0.2):
                return server
        except OSError:
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{target} did not start listening: see {server.log}")


def stop_server(server: Server) -> None:
    server.process.send_signal(signal.SIGINT)  # hypercorn's parent stops its workers
    try:
        server.process.wait(10)
    except subprocess.TimeoutExpired:
        server.process.kill()
    if "Traceback" not in server.log.read_text(errors="replace"):
        server.log.unlink()  # kept only when something went wrong in the server


async def log_in(app: Quart, user_ids: list[int]) -> dict[int, dict[str, str]]:
    """A login session per user, made as the login form makes it, and its cookie."""
    settings = app.extensions["account_settings"]
    auth = app.extensions["QUART_AUTH"][0]
    cookies = {}
    async with app.extensions["database"].sessionmaker() as session:
        for user_id in user_ids:
            user = await session.get_one(User, user_id)
            secret = await login_sessions.start_session(session, settings, user, remember=False)
            async with app.app_context():
                token = auth.dump_token(secret, app=app)
            cookies[user_id] = {app.config["QUART_AUTH_COOKIE_NAME"]: token}
    return cookies
