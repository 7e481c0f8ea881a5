"""Real hypercorn servers for a test, and a browser's HTTP and EventSource over raw sockets."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

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


@contextlib.asynccontextmanager
async def serve(database_url: str, log_dir: Path, count: int = 2) -> AsyncIterator[list[Worker]]:
    """`count` separate hypercorn servers (one worker each) on free ports, ready to answer."""
    environment = {**os.environ, **WORKER_SETTINGS, "DATABASE_URL": database_url}
    workers: list[Worker] = []
    try:
        for number in range(count):
            port, log = free_port(), log_dir / f"worker{number}.log"
            with log.open("wb") as output:
                process = await asyncio.create_subprocess_exec(
                    *(sys.executable, "-m", "hypercorn", "app:create_app()"),
                    *("--bind", f"127.0.0.1:{port}", "--graceful-timeout", "1"),
                    cwd=ROOT,
                    env=environment,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    # Its own process group: hypercorn's worker child can be ended with it.
                    start_new_session=True,
                )
            workers.append(Worker(port, process, log))
        await asyncio.gather(*(until_healthy(worker) for worker in workers))
        yield workers
    finally:
        await asyncio.gather(*(stop(worker) for worker in workers))


async def until_healthy(worker: Worker, wait: float = 20) -> None:
    """The socket is bound before the app has started; /healthz answers once it has."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
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
