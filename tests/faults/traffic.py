"""What the fault tests do to a server: comments written with a token each (so the database
can say which writes took), and what each attempt was answered."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlencode

from sqlalchemy import select

from app.db import create_engine
from app.models import Activity, Comment
from tests.servers import Team, Worker, http

_tokens = itertools.count(1)


@dataclass
class Attempts:
    """Every write attempt by its token: acknowledged (302), refused (503 with Retry-After),
    unanswered (the connection failed or was cut: it may or may not have committed), or
    anything else (a failure of the test)."""

    acknowledged: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    unanswered: list[str] = field(default_factory=list)
    other: list[tuple[str, int, str]] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.acknowledged) + len(self.refused) + len(self.unanswered) + len(self.other)


async def post_comment(
    team: Team, worker: Worker, issue_key: str, attempts: Attempts, body_size: int = 0
) -> str | None:
    """One comment attempt; its token if the server acknowledged it."""
    token = f"tok{next(_tokens)}x"
    body = urlencode({"body": f"{token} {'w' * body_size}".strip()})
    started = time.monotonic()
    try:
        answer = await http(worker.port, "POST", f"/{issue_key}/comments", team.form(), body)
    except (OSError, TimeoutError, asyncio.IncompleteReadError):
        attempts.unanswered.append(token)
        return None
    attempts.latencies.append(time.monotonic() - started)
    if answer.status == 302:
        attempts.acknowledged.append(token)
        return token
    if answer.status == 503 and (answer.header("Retry-After") or "").isdigit():
        attempts.refused.append(token)
    else:
        attempts.other.append((token, answer.status, answer.body[:300].decode(errors="replace")))
    return None


@dataclass
class WrittenComments:
    """The database's truth: how many comments carry each token, and whether every comment
    has its activity row and every comment activity row its comment."""

    by_token: Counter[str]
    comments_without_event: int
    events_without_comment: int


async def written_comments(database_url: str) -> WrittenComments:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            comments = dict(list(await connection.execute(select(Comment.id, Comment.body))))
            events = [
                payload.get("comment_id")
                for (payload,) in await connection.execute(
                    select(Activity.payload).where(Activity.kind == "comment.added")
                )
            ]
    finally:
        await engine.dispose()
    by_token = Counter(body.split()[0] for body in comments.values() if body.startswith("tok"))
    return WrittenComments(
        by_token,
        comments_without_event=len(set(comments) - set(events)),
        events_without_comment=len(set(events) - set(comments)),
    )


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] if ordered else 0.0
