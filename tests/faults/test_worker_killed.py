"""A hypercorn worker killed with SIGKILL mid-writes: no acknowledged write and no event lost."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest

from tests.faults.traffic import Attempts, post_comment, written_comments
from tests.servers import (
    all_caught_up,
    make_team,
    serve,
    start_worker,
    subscribed,
    tail,
)

pytestmark = pytest.mark.postgresql_only

WRITERS = 4
SUBSCRIBERS_PER_WORKER = 4


async def test_a_worker_killed_mid_writes_loses_no_acknowledged_write_and_no_event(
    database_url: str, tmp_path: Path
) -> None:
    team = await make_team(database_url, issue_count=WRITERS)
    issue_keys = [f"{team.project_key}-{n}" for n in range(1, WRITERS + 1)]
    attempts = Attempts()
    stop_writing = asyncio.Event()

    async with serve(database_url, tmp_path) as workers:

        async def write(writer: int) -> None:
            """Comment again and again through both servers; an attempt that fails (its
            server died) is made again, with a new token, on the other server."""
            turn = writer
            while not stop_writing.is_set():
                deadline = time.monotonic() + 20
                while not await post_comment(
                    team, workers[turn % len(workers)], issue_keys[writer], attempts
                ):
                    assert time.monotonic() < deadline, f"writer {writer}: nothing took in 20 s"
                    turn += 1
                    await asyncio.sleep(0.05)
                turn += 1
                await asyncio.sleep(0.02)

        await team.open_board(workers[0])
        subscribers = team.board_streams(workers, SUBSCRIBERS_PER_WORKER)
        async with subscribed(subscribers):
            writing = [asyncio.create_task(write(n)) for n in range(WRITERS)]
            try:
                await asyncio.sleep(1.5)
                victim = workers[0]
                os.kill(victim.server_pid(), signal.SIGKILL)
                # hypercorn does not replace a dead worker: the whole server exits (with status
                # 0: pgjones/hypercorn#269, hence systemd's Restart=always)...
                exit_code = await asyncio.wait_for(victim.process.wait(), 10)
                await asyncio.sleep(1)  # ...and B alone takes the writes for a while
                # ...until its supervisor (here, the test) starts it again on its port.
                workers[0] = await start_worker(database_url, victim.log, victim.port)
                await asyncio.sleep(1.5)
            finally:
                stop_writing.set()
                await asyncio.gather(*writing)
            log, _ = await all_caught_up(database_url, team, subscribers, wait=20)
            last_seq = log[-1][0]
        logs = "\n".join(tail(worker.log) for worker in workers)

    truth = await written_comments(database_url)
    assert attempts.other == [], f"answers other than 302: {attempts.other[:5]}"
    lost_writes = [token for token in attempts.acknowledged if truth.by_token[token] != 1]
    assert not lost_writes, f"acknowledged but not written exactly once: {lost_writes[:10]}"
    assert truth.comments_without_event == truth.events_without_comment == 0
    expected = {seq for seq, _ in log}
    assert expected == set(range(1, last_seq + 1)), "the log itself has gaps"
    duplicates = 0
    for subscriber in subscribers:
        seqs = [event.seq for event in subscriber.received]
        missing = sorted(expected - set(seqs))
        duplicates += len(seqs) - len(set(seqs))
        assert subscriber.resyncs == 0, f"{subscriber.name} was told to resync\n{logs}"
        assert not missing, f"{subscriber.name}: {len(missing)} lost, first {missing[:10]}\n{logs}"
    unanswered_taken = sum(1 for token in attempts.unanswered if truth.by_token[token])
    print(
        f"\nSIGKILL (server exited {exit_code}): events written: {len(log)}; "
        f"writes acknowledged {len(attempts.acknowledged)}, "
        f"unanswered {len(attempts.unanswered)} (of which committed {unanswered_taken}), "
        f"acknowledged missing: 0; received per subscriber: "
        + ", ".join(
            f"{s.name}={len(set(e.seq for e in s.received))} ({s.streams} streams, "
            f"{s.broken} broken)"
            for s in subscribers
        )
        + f"; duplicates before dedup: {duplicates}; lost: 0"
    )
