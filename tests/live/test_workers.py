"""Two hypercorn workers on one PostgreSQL: events cross workers and survive a restart."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from app import create_app
from app.db import create_engine
from app.models import Activity
from app.services import accounts, issues, projects
from tests.factories import make_project, make_user
from tests.live.servers import Subscriber, Worker, http, serve, subscribed, tail

# PostgreSQL only: LISTEN/NOTIFY is what carries events between workers (SQLite is one process).
pytestmark = pytest.mark.postgresql_only


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
            secret = await accounts.start_session(
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
        subscribers = [
            Subscriber(
                f"{name}{n}", worker.port, f"/p/{team.project_key}/events", team.headers(), 0
            )
            for name, worker in zip("AB", workers, strict=True)
            for n in range(per_worker)
        ]
        async with subscribed(subscribers):
            writing = [asyncio.create_task(write(n, workers)) for n in range(writers)]
            try:
                await asyncio.sleep(1.5)
                outage = await asyncio.to_thread(restart_postgres, url.host, url.port or 5432)
                await asyncio.sleep(2)  # writes after the restart too
            finally:
                stop_writing.set()
                await asyncio.gather(*writing)
            written_at = time.monotonic()
            log = await event_log(database_url, team.project_id)
            last_seq = log[-1][0]
            await asyncio.gather(*(s.until_seen(last_seq, wait=30) for s in subscribers))
            caught_up = time.monotonic() - written_at
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
