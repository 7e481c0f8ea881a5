"""Live fan-out: N subscribers on one board, the time from a move's commit to its arrival.

Run after `make test` has set up `.venv`:

    .venv/bin/python -m bench.fanout --subscribers 1000
    .venv/bin/python -m bench.fanout --subscribers 1000 --workers 2 \
        --database-url postgresql://postgres@127.0.0.1/issues_bench_fanout

It migrates a scratch database (a temporary SQLite file unless --database-url is given; that
database is emptied), serves the app with hypercorn on a free loopback port, opens N event
streams over raw sockets (all on 127.0.0.1), commits M moves through the service layer, and
prints, per move, the delay from its commit to its arrival at the first and at the last
subscriber (p50/p99 over the moves), and the server's memory per idle subscriber (RSS growth
of the hypercorn processes divided by N, over the last nine tenths of the streams: the first
tenth pays for what the first streams cost once). With --gc-probe the workers log every garbage
collection pass over 20 ms (a gc.callbacks probe in a sitecustomize.py on their PYTHONPATH),
and the run ends with a count of them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from http.client import HTTPConnection, HTTPResponse
from pathlib import Path
from urllib.parse import urlencode

from quart_auth import QuartAuth

from app import create_app
from app.config import normalise_database_url
from app.db import create_engine, migrations, utcnow
from app.models import User
from app.services import issues, login_sessions, projects

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rss_kib(pid: int) -> int:
    """Resident memory of a process and its children (hypercorn's workers), in KiB."""
    total = 0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(child) for child in children.read_text().split()]
    for one in pids:
        for line in Path(f"/proc/{one}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


def http(
    port: int, method: str, path: str, cookie: str, *, body: str | None = None, token: str = ""
) -> HTTPResponse:
    connection = HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Cookie": cookie, "Accept": "application/json" if body else "text/html"}
    if body is not None:
        headers |= {"Content-Type": "application/x-www-form-urlencoded", "X-CSRF-Token": token}
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    if response.status >= 400:
        raise RuntimeError(f"{method} {path}: {response.status}")
    return response


# How many subscribers have each event: the next move waits for the last one.
ARRIVED: dict[int, int] = {}


class Subscriber:
    def __init__(self) -> None:
        self.arrivals: dict[int, float] = {}
        self.ready = asyncio.Event()
        self.retries = 0

    async def run(self, port: int, path: str, cookie: str) -> None:
        # Like a browser's EventSource: a stream closed before it opened is tried again (with
        # thousands connecting at once, the server may reach a request only after hypercorn's
        # keep-alive timeout closed its connection).
        # And one that ends later is opened again from its last event id, as a browser does.
        while True:
            await self._stream(port, path, cookie)
            self.retries += 1
            await asyncio.sleep(1 + random.random())

    async def _stream(self, port: int, path: str, cookie: str) -> None:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
        except OSError:
            return
        try:
            last_id = f"Last-Event-ID: {max(self.arrivals)}\r\n" if self.arrivals else ""
            writer.write(
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\n{last_id}"
                "Accept: text/event-stream\r\n\r\n".encode()
            )
            await writer.drain()
            while True:
                line = await reader.readline()
                if not line:
                    return
                if b"connected" in line:
                    self.ready.set()
                if line.startswith(b"id: "):
                    seq = int(line[4:])
                    if seq not in self.arrivals:
                        self.arrivals[seq] = time.perf_counter()
                        ARRIVED[seq] = ARRIVED.get(seq, 0) + 1
        except OSError:
            return
        finally:
            writer.close()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


GC_PROBE = """
import gc, os, time

_started = [0.0]


def _probe(phase, info):
    if phase == "start":
        _started[0] = time.perf_counter()
    elif (elapsed := (time.perf_counter() - _started[0]) * 1000) > 20:
        with open(os.environ["ISSUES_GC_PROBE_LOG"], "a") as log:
            log.write(
                f"{os.getpid()} {info['generation']} {elapsed:.1f} {gc.get_freeze_count()} "
                f"{time.monotonic():.1f}\\n"
            )


gc.callbacks.append(_probe)
"""


def gc_passes(log: Path, window: tuple[float, float]) -> str:
    """The slow passes the probe logged while streams were open (not those of start-up and
    shutdown): how many, per generation, and the slowest."""
    passes = [line.split() for line in log.read_text().splitlines()] if log.exists() else []
    by_generation: dict[str, list[float]] = {}
    for _pid, generation, milliseconds, _frozen, when in passes:
        if window[0] <= float(when) <= window[1]:
            by_generation.setdefault(generation, []).append(float(milliseconds))
    if not by_generation:
        return "no garbage collection pass over 20 ms in the workers while streams were open"
    return (
        "garbage collection passes over 20 ms in the workers while streams were open: "
        + ", ".join(
            f"generation {generation}: {len(times)} (slowest {max(times):.1f} ms)"
            for generation, times in sorted(by_generation.items())
        )
    )


async def main(
    database_url: str | None, subscribers: int, moves: int, workers: int, gc_probe: bool
) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, subscribers * 2 + 1024)), hard))
    scratch = tempfile.TemporaryDirectory()
    url = normalise_database_url(database_url or f"sqlite+aiosqlite:///{scratch.name}/fanout.db")
    engine = create_engine(url)
    await migrations.downgrade(engine, "base")
    await migrations.upgrade(engine)
    await engine.dispose()

    app = create_app("testing", DATABASE_URL=url)
    settings = app.extensions["account_settings"]
    async with app.extensions["database"].sessionmaker() as session:
        owner = User(
            email="bench@example.com",
            handle="bench",
            display_name="Bench",
            email_verified_at=utcnow(),
        )
        session.add(owner)
        await session.commit()
        session.expunge(owner)
        project = await projects.create_project(session, owner, key="BENCH", name="Bench")
        issue = await issues.create_issue(session, owner, project.id, title="The card that moves")
        columns = await projects.workflow(session, project.id)
        secret = await login_sessions.start_session(session, settings, owner, remember=False)
    async with app.app_context():
        cookie = f"issues_auth={QuartAuth(app).dump_token(secret, app=app)}"

    port = free_port()
    server_log = (Path(scratch.name) / "server.log").open("w")
    # The testing configuration (a plain-http cookie), with production's garbage collection.
    environment = {
        **os.environ,
        "ISSUES_CONFIG": "testing",
        "DATABASE_URL": url,
        "GC_FREEZE_AFTER_START": "true",
    }
    probe_log = Path(scratch.name) / "gc.log"
    if gc_probe:
        (Path(scratch.name) / "sitecustomize.py").write_text(GC_PROBE)
        environment["PYTHONPATH"] = scratch.name
        environment["ISSUES_GC_PROBE_LOG"] = str(probe_log)
    window = (time.monotonic(), time.monotonic())  # while streams are open, set below
    server = subprocess.Popen(  # noqa: S603, ASYNC220  (our hypercorn, on loopback; a benchmark)
        [
            sys.executable,
            "-m",
            "hypercorn",
            "app:create_app()",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--graceful-timeout",
            "1",
            "--backlog",
            "4096",
        ],
        cwd=ROOT,
        env=environment,
        stdout=server_log,
        stderr=subprocess.STDOUT,
    )
    try:
        for _ in range(100):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                await asyncio.sleep(0.1)
        await asyncio.sleep(1)
        memory_before = rss_kib(server.pid)
        clients = [Subscriber() for _ in range(subscribers)]
        tasks = []

        async def open_streams(wave: list[Subscriber]) -> None:
            for batch in range(0, len(wave), 100):
                for client in wave[batch : batch + 100]:
                    tasks.append(asyncio.create_task(client.run(port, "/p/BENCH/events", cookie)))
                await asyncio.sleep(0.05)
            # Setting up is not what is measured: allow about 50 ms per subscriber for it.
            await asyncio.wait_for(
                asyncio.gather(*(c.ready.wait() for c in wave)), max(120, len(wave) * 0.05)
            )
            await asyncio.sleep(2)

        # A tenth of the streams first: what they cost includes what any first streams cost
        # once (the pool's connections opened to its limit, the allocator's first arenas);
        # the other nine tenths then measure what one more idle stream costs.
        first_wave = max(1, subscribers // 10)
        window = (time.monotonic(), 0.0)
        connecting = time.perf_counter()
        await open_streams(clients[:first_wave])
        memory_warm = rss_kib(server.pid)
        await open_streams(clients[first_wave:])
        connected_in = time.perf_counter() - connecting - 4
        memory_after = rss_kib(server.pid)

        # Moves go through the server, as a browser's would (with SQLite, only the serving
        # process hears its own commits). t0 is when the move request is sent: an upper bound
        # of the delay from the commit.
        board = await asyncio.to_thread(http, port, "GET", "/p/BENCH/board", cookie)
        session_cookie = board.headers["Set-Cookie"].split(";", 1)[0]
        token = re.search(r'data-csrf="([^"]+)"', board.read().decode()).group(1)
        committed: dict[int, float] = {}
        version = issue.version
        # One move first, not measured: it renders the card and warms the server's paths.
        for n in range(-1, moves):
            sent_at = time.perf_counter()
            answer = await asyncio.to_thread(
                http,
                port,
                "POST",
                "/p/BENCH/board/moves",
                f"{cookie}; {session_cookie}",
                body=urlencode(
                    {
                        "issue": issue.id,
                        "status": columns[(n + 2) % len(columns)].id,
                        "version": version,
                    }
                ),
                token=token,
            )
            version = json.loads(answer.read())["version"]
            seq = 2 + 2 + n  # project.created, issue.created, the warm-up, then one per move
            if n >= 0:
                committed[seq] = sent_at
            # One move at a time, as in a meeting: the next when this one reached everyone (or
            # after 10 s), so that a move's delay is its own, not a queue of earlier ones.
            deadline = time.perf_counter() + 10
            while ARRIVED.get(seq, 0) < subscribers and time.perf_counter() < deadline:  # noqa: ASYNC110  (a poll of a counter, in a benchmark's client)
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.1)
        await asyncio.sleep(3)
        window = (window[0], time.monotonic())
        first, last, missing = [], [], 0
        for seq, at in committed.items():
            arrivals = [c.arrivals[seq] - at for c in clients if seq in c.arrivals]
            missing += subscribers - len(arrivals)
            if arrivals:
                first.append(min(arrivals) * 1000)
                last.append(max(arrivals) * 1000)
        for task in tasks:
            task.cancel()
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
        server_log.close()
        log_text = (Path(scratch.name) / "server.log").read_text(errors="replace")
        errors = [
            "Error in ASGI Framework" + part
            for part in log_text.split("Error in ASGI Framework")[1:]
        ]
        probe_report = gc_passes(probe_log, window) if gc_probe else ""
        scratch.cleanup()

    backend = url.split(":", 1)[0]
    print(
        f"Fan-out: {subscribers} subscribers, {moves} moves (after one warm-up move), "
        f"{workers} worker(s), {backend}\n"
    )
    print("| measure | p50 | p99 |\n|---|---|---|")
    print(
        f"| move request -> first subscriber (ms) | {statistics.median(first):.1f} | "
        f"{percentile(first, 0.99):.1f} |"
    )
    print(
        f"| move request -> last subscriber (ms) | {statistics.median(last):.1f} | "
        f"{percentile(last, 0.99):.1f} |"
    )
    per_subscriber = (memory_after - memory_warm) / max(1, subscribers - first_wave)
    overall = (memory_after - memory_before) / subscribers
    print(
        f"\nEvents not received: {missing}. Server memory per idle subscriber: "
        f"{per_subscriber:.1f} KiB ({memory_warm} -> {memory_after} KiB RSS for the last "
        f"{subscribers - first_wave}); from the start, all of them: {overall:.1f} KiB "
        f"({memory_before} -> {memory_after} KiB).\n"
        f"All {subscribers} streams open in {connected_in:.1f} s "
        f"({sum(c.retries for c in clients)} reconnections on the way)."
    )
    if probe_report:
        print(probe_report[0].upper() + probe_report[1:] + ".")
    if errors:
        print(f"The server logged {len(errors)} errors; the first:\n{errors[0][:3000]}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url")
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--moves", type=int, default=50)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--gc-probe", action="store_true", help="log slow collections")
    arguments = parser.parse_args()
    asyncio.run(
        main(
            arguments.database_url,
            arguments.subscribers,
            arguments.moves,
            arguments.workers,
            arguments.gc_probe,
        )
    )
