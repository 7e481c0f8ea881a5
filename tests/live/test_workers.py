"""Two hypercorn workers on one PostgreSQL: events cross workers and survive a restart."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path
from urllib.parse import urlencode

import pytest
from sqlalchemy.engine import make_url

from tests.servers import (
    Subscriber,
    Worker,
    all_caught_up,
    event_log,
    http,
    make_team,
    restart_postgres,
    serve,
    subscribed,
    tail,
)

# PostgreSQL only: LISTEN/NOTIFY is what carries events between workers (SQLite is one process).
pytestmark = pytest.mark.postgresql_only


# --- The tests --------------------------------------------------------------------------------


async def test_a_move_through_one_worker_reaches_a_subscriber_on_the_other(
    database_url: str, tmp_path: Path
) -> None:
    team = await make_team(database_url, issue_count=1)
    async with serve(database_url, tmp_path) as (worker_a, worker_b):
        await team.open_board(worker_a)
        [(start, _)] = (await event_log(database_url, team.project_id))[-1:]
        watcher = Subscriber("B", worker_b.port, f"/p/{team.project_key}/events", team.headers())
        watcher.last_id = start
        async with subscribed([watcher]):
            move = await http(
                worker_a.port,
                "POST",
                f"/p/{team.project_key}/board/moves",
                team.form(Accept="application/json"),
                urlencode(
                    {"issue": team.issue_ids[0], "status": team.done_status_id, "version": 1}
                ),
            )
            assert move.status == 200, move.body[:500]
            arrived = await watcher.until_seen(start + 1, wait=5)
        logs = f"\n{tail(worker_a.log)}\n{tail(worker_b.log)}"
    assert arrived, f"the move never reached worker B{logs}"
    assert (await event_log(database_url, team.project_id))[-1] == (start + 1, "issue.moved")
    [event] = watcher.received
    assert (event.seq, event.kind) == (start + 1, "issue.moved")
    assert event.data["issue_id"] == team.issue_ids[0]
    assert event.data["status_id"] == team.done_status_id and event.data["version"] == 2


async def test_no_event_is_lost_when_postgres_restarts_during_writes(
    database_url: str, tmp_path: Path
) -> None:
    url = make_url(database_url)
    if url.host not in ("127.0.0.1", "localhost") or shutil.which("pg_ctlcluster") is None:
        pytest.skip("restarts the local PostgreSQL cluster with pg_ctlcluster")
    writers, per_worker = 4, 3
    team = await make_team(database_url, issue_count=writers)
    issue_keys = [f"{team.project_key}-{n}" for n in range(1, writers + 1)]
    acknowledged = 0
    failed_attempts = 0
    stop_writing = asyncio.Event()

    async def write(writer: int, workers: list[Worker]) -> None:
        """Comment again and again, through each worker in turn; a write the server did not
        acknowledge (the database was away) is tried again until it is."""
        nonlocal acknowledged, failed_attempts
        turn = writer
        while not stop_writing.is_set():
            worker = workers[turn % len(workers)]
            turn += 1
            body = urlencode({"body": f"writer {writer}, comment {turn}"})
            give_up = time.monotonic() + 30
            while True:
                assert time.monotonic() < give_up, f"writer {writer}: no write acknowledged in 30 s"
                try:
                    answer = await http(
                        worker.port, "POST", f"/{issue_keys[writer]}/comments", team.form(), body
                    )
                    if answer.status == 302:
                        acknowledged += 1
                        break
                except (OSError, TimeoutError):
                    pass
                failed_attempts += 1
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.03)

    async with serve(database_url, tmp_path) as workers:
        await team.open_board(workers[0])
        subscribers = team.board_streams(workers, per_worker)
        async with subscribed(subscribers):
            writing = [asyncio.create_task(write(n, workers)) for n in range(writers)]
            try:
                await asyncio.sleep(1.5)
                outage = await asyncio.to_thread(restart_postgres, url.host, url.port or 5432)
                await asyncio.sleep(2)  # writes after the restart too
            finally:
                stop_writing.set()
                await asyncio.gather(*writing)
            log, caught_up = await all_caught_up(database_url, team, subscribers)
            last_seq = log[-1][0]
        logs = "\n".join(tail(worker.log) for worker in workers)

    expected = [seq for seq, _ in log]
    assert expected == list(range(1, last_seq + 1)), "the log itself has gaps"
    # The setup's events (project, issues), then at least one comment per acknowledged write.
    assert len(log) >= 1 + writers + acknowledged
    for subscriber in subscribers:
        seqs = [event.seq for event in subscriber.received]
        missing = sorted(set(expected) - set(seqs))
        duplicated = len(seqs) - len(set(seqs))
        assert subscriber.resyncs == 0, f"{subscriber.name} was told to resync\n{logs}"
        assert not missing and not duplicated, (
            f"{subscriber.name}: {len(missing)} lost (first {missing[:10]}), "
            f"{duplicated} duplicated\n{logs}"
        )
        assert seqs == expected, f"{subscriber.name} received events out of order"
        assert [event.kind for event in subscriber.received] == [kind for _, kind in log]
    print(
        f"\nrestart took {outage:.1f} s; events written: {len(log)} ({acknowledged} acknowledged "
        f"writes, {failed_attempts} failed attempts retried); received per subscriber: "
        + ", ".join(
            f"{s.name}={len(s.received)} ({s.streams} streams, {s.refused} refused, "
            f"{s.broken} broken)"
            for s in subscribers
        )
        + f"; all caught up {caught_up:.1f} s after the last write; lost: 0"
    )
