"""A restart under load, as docs/deploy.md has admins do it: systemd holds the listening
socket (socket activation, `--bind fd://3`) and sends SIGTERM to hypercorn's main process only
(KillMode=mixed). No request fails; event streams resume with nothing lost.

One exception, counted and printed: hypercorn closes the connections it has accepted but not
yet read a request from when it stops, so a request sent in that instant is reset unanswered.
nginx retries such a GET on the next server itself (`proxy_next_upstream error`, its default),
as `read` does here; a write caught in it must not have been applied (docs/deploy.md)."""

from __future__ import annotations

import asyncio
import signal
import socket
import time
from pathlib import Path

import pytest

from tests.faults.traffic import Attempts, percentile, post_comment, written_comments
from tests.servers import (
    Subscriber,
    event_log,
    http,
    make_team,
    start_worker,
    stop,
    subscribed,
    tail,
)

pytestmark = pytest.mark.postgresql_only

WRITERS = 3
READERS = 3
SUBSCRIBERS = 4


async def test_a_restart_on_a_held_socket_fails_no_request_and_loses_no_event(
    database_url: str, tmp_path: Path
) -> None:
    team = await make_team(database_url, issue_count=WRITERS)
    issue_keys = [f"{team.project_key}-{n}" for n in range(1, WRITERS + 1)]
    # What systemd's issues.socket does: the socket outlives every hypercorn that serves it,
    # so a connection made while none runs waits in its backlog instead of being refused.
    held = socket.socket()
    held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    held.bind(("127.0.0.1", 0))
    held.listen(1024)
    held.set_inheritable(True)
    port, log = held.getsockname()[1], tmp_path / "server.log"
    writes, reads = Attempts(), Attempts()
    read_failures: list[str] = []
    proxy_retries: list[str] = []
    stop_traffic = asyncio.Event()

    async def write(writer: int) -> None:
        while not stop_traffic.is_set():  # no retries: every attempt must succeed
            await post_comment(team, server, issue_keys[writer], writes)
            await asyncio.sleep(0.02)

    async def read() -> None:
        while not stop_traffic.is_set():
            started = time.monotonic()
            for attempt in (1, 2):  # a reset before any answer is retried once, as nginx does
                try:
                    page = await http(port, "GET", f"/p/{team.project_key}/board", team.headers())
                    if page.status != 200:
                        read_failures.append(f"status {page.status}")
                    break
                except ConnectionResetError as error:
                    if attempt == 2:
                        read_failures.append(repr(error))
                    else:
                        proxy_retries.append(repr(error))
                except (OSError, TimeoutError, asyncio.IncompleteReadError) as error:
                    read_failures.append(repr(error))
                    break
            reads.latencies.append(time.monotonic() - started)
            await asyncio.sleep(0.02)

    server = await start_worker(database_url, log, port, listen_fd=held.fileno())
    try:
        await team.open_board(server)
        subscribers = [
            Subscriber(f"S{n}", port, f"/p/{team.project_key}/events", team.headers(), 0)
            for n in range(SUBSCRIBERS)
        ]
        async with subscribed(subscribers):
            traffic = [asyncio.create_task(write(n)) for n in range(WRITERS)]
            traffic += [asyncio.create_task(read()) for _ in range(READERS)]
            try:
                await asyncio.sleep(1)
                # `systemctl restart issues`: SIGTERM to the main process, wait, start anew.
                restart_began = time.monotonic()
                server.process.send_signal(signal.SIGTERM)
                await asyncio.wait_for(server.process.wait(), 15)
                server = await start_worker(database_url, log, port, listen_fd=held.fileno())
                restart = time.monotonic() - restart_began
                await asyncio.sleep(1.5)
            finally:
                stop_traffic.set()
                await asyncio.gather(*traffic)
            events = await event_log(database_url, team.project_id)
            last_seq = events[-1][0]
            await asyncio.gather(*(s.until_seen(last_seq, wait=20) for s in subscribers))
    finally:
        await stop(server)
        held.close()

    truth = await written_comments(database_url)
    assert writes.other == [], f"failed writes: {writes.other[:3]}\n{tail(log)}"
    # A write reset in the instant the old server stopped was never read: not applied.
    assert len(writes.unanswered) <= 2, f"{len(writes.unanswered)} writes reset\n{tail(log)}"
    assert all(truth.by_token[token] == 0 for token in writes.unanswered)
    assert read_failures == [], f"failed reads: {read_failures[:5]}\n{tail(log)}"
    assert all(truth.by_token[token] == 1 for token in writes.acknowledged)
    expected = set(range(1, last_seq + 1))
    for subscriber in subscribers:
        missing = sorted(expected - {event.seq for event in subscriber.received})
        assert subscriber.resyncs == 0 and not missing, f"{subscriber.name}: lost {missing[:10]}"
        assert subscriber.streams >= 2, f"{subscriber.name}'s stream never restarted"
    latencies = writes.latencies + reads.latencies
    print(
        f"\ngraceful restart ({restart:.1f} s from SIGTERM to the new server answering): "
        f"requests {writes.count} writes + {len(reads.latencies)} reads, failed: 0 "
        f"(reset unanswered as the old server stopped: {len(proxy_retries)} reads, retried as "
        f"nginx does; {len(writes.unanswered)} writes, not applied), slowest "
        f"{max(latencies):.1f} s (p50 {percentile(latencies, 0.5) * 1000:.0f} ms); events "
        f"written: {last_seq}, received per subscriber: "
        + ", ".join(
            f"{s.name}={len({e.seq for e in s.received})} ({s.streams} streams)"
            for s in subscribers
        )
        + "; lost: 0"
    )
