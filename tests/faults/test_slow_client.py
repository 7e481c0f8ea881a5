"""A subscriber that stops reading: the others' latency holds and the server's memory stays
bounded (its backlog is dropped for a `resync`, decision 0007)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from pathlib import Path

import pytest

from tests.faults.traffic import Attempts, percentile, post_comment
from tests.servers import (
    Subscriber,
    Team,
    Worker,
    event_log,
    make_team,
    rss_kib,
    serve,
    subscribed,
)

pytestmark = pytest.mark.postgresql_only

SUBSCRIBERS = 20
MEASURED = 25  # comments whose arrival is timed, before and while the slow client is stuck
FILLER = 320  # comments that bury the slow client under more than the kernel buffers hold
FILLER_BODY = 19_000  # characters (the most is 20 000): each event carries the comment's HTML
BODY = 2_000
QUEUE_SIZE = 64


def kernel_send_queue(server_port: int, client_port: int) -> int:
    """Bytes the kernel holds, unacknowledged, on the server's side of one connection."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = fields[1], fields[2]
        if int(local.split(":")[1], 16) == server_port and int(remote.split(":")[1], 16) == (
            client_port
        ):
            return int(fields[4].split(":")[0], 16)
    return 0


async def timed_comments(
    team: Team, worker: Worker, subscribers: list[Subscriber], after_seq: int, count: int
) -> tuple[list[float], int]:
    """Post `count` comments one by one; each one's latency from posting to its arrival at
    each subscriber."""
    latencies, seq, attempts = [], after_seq, Attempts()
    for _ in range(count):
        started = time.monotonic()
        assert await post_comment(team, worker, f"{team.project_key}-1", attempts, BODY)
        seq += 1
        arrived = await asyncio.gather(*(s.until_seen(seq, wait=10) for s in subscribers))
        assert all(arrived), f"event {seq} did not reach every subscriber"
        latencies += [s.arrived_at[seq] - started for s in subscribers]
    return latencies, seq


async def test_a_client_that_stops_reading_slows_no_one_and_holds_bounded_memory(
    database_url: str, tmp_path: Path
) -> None:
    team = await make_team(database_url, issue_count=1)
    async with serve(
        database_url, tmp_path, count=1, settings={"SSE_QUEUE_SIZE": str(QUEUE_SIZE)}
    ) as (worker,):
        await team.open_board(worker)
        [(start, _)] = (await event_log(database_url, team.project_id))[-1:]
        path = f"/p/{team.project_key}/events"
        subscribers = [
            Subscriber(f"S{n}", worker.port, path, team.headers(), start)
            for n in range(SUBSCRIBERS)
        ]
        async with subscribed(subscribers):
            before, seq = await timed_comments(team, worker, subscribers, start, MEASURED)
            server_pid = worker.server_pid()
            rss_before = rss_kib(server_pid)

            # The slow client: a tiny receive buffer, a request, and then it never reads.
            slow = socket.socket()
            slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            slow.connect(("127.0.0.1", worker.port))
            request_head = "\r\n".join(
                [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", "Accept: text/event-stream"]
                + [f"{name}: {value}" for name, value in team.headers().items()]
            )
            slow.sendall(f"{request_head}\r\n\r\n".encode())
            try:
                attempts = Attempts()
                for _ in range(FILLER // 4):
                    await asyncio.gather(
                        *(
                            post_comment(
                                team, worker, f"{team.project_key}-1", attempts, FILLER_BODY
                            )
                            for _ in range(4)
                        )
                    )
                assert len(attempts.acknowledged) == FILLER
                seq += FILLER
                await asyncio.gather(*(s.until_seen(seq, wait=30) for s in subscribers))
                held_by_kernel = kernel_send_queue(worker.port, slow.getsockname()[1])
                during, seq = await timed_comments(team, worker, subscribers, seq, MEASURED)
                rss_during = rss_kib(server_pid)
                # Now read what the slow client was sent: its stream ends with a resync.
                slow.setblocking(False)
                received = b""
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(10):
                        while b"event: resync" not in received:
                            chunk = await asyncio.get_running_loop().sock_recv(slow, 1 << 16)
                            if not chunk:
                                break
                            received += chunk
            finally:
                slow.close()
        lost = sum(
            len({e.seq for e in s.received} ^ set(range(start + 1, seq + 1))) for s in subscribers
        )

    p50_before, p50_during = percentile(before, 0.5), percentile(during, 0.5)
    assert lost == 0
    assert b"event: resync" in received, (
        f"the slow client's backlog was never dropped: {len(received)} bytes, "
        f"ending {received[-300:]!r}"
    )
    assert p50_during <= p50_before + 0.1, f"p50 {p50_before:.3f} s became {p50_during:.3f} s"
    assert rss_during - rss_before < 64 * 1024, f"RSS grew {rss_during - rss_before} KiB"
    print(
        f"\nslow client: events written: {seq - start}, received per "
        f"subscriber: {seq - start} x {SUBSCRIBERS}, lost: 0; p50/p95 latency before "
        f"{p50_before * 1000:.0f}/{percentile(before, 0.95) * 1000:.0f} ms, while one client is "
        f"stuck {p50_during * 1000:.0f}/{percentile(during, 0.95) * 1000:.0f} ms; server RSS "
        f"{rss_before // 1024} -> {rss_during // 1024} MiB; the stuck connection's kernel send "
        f"queue {held_by_kernel // 1024} KiB; it received {len(received) // 1024} KiB, then resync"
    )
