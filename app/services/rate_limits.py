"""Fixed-window request limits kept in the database, so every worker counts the same hits."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.models import RateLimitBucket
from app.services.transaction import use_case

# Buckets older than this are deleted now and then.
KEEP_BUCKETS_FOR = timedelta(days=1)


def _window_start(now: datetime, window_seconds: int) -> datetime:
    start = math.floor(now.timestamp() / window_seconds) * window_seconds
    return datetime.fromtimestamp(start, UTC)


@dataclass(frozen=True)
class WindowCount:
    """Where a key stands in its current window: for RateLimit-* and Retry-After headers."""

    limit: int
    hits: int
    reset_seconds: int

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.hits)

    @property
    def exceeded(self) -> bool:
        return self.hits > self.limit


async def hit(session: AsyncSession, key: str, *, limit: int, window_seconds: int) -> int | None:
    """Count one request for `key`. Returns None while within `limit` per window, else the
    seconds until the window ends (for Retry-After)."""
    count = await count_hit(session, key, limit=limit, window_seconds=window_seconds)
    return count.reset_seconds if count.exceeded else None


async def current_count(
    session: AsyncSession, key: str, *, limit: int, window_seconds: int
) -> WindowCount:
    """Where `key` stands in the current window, without counting a hit."""
    now = utcnow()
    window_start = _window_start(now, window_seconds)
    hits = await session.scalar(
        select(RateLimitBucket.hits).where(
            RateLimitBucket.key == key[:400], RateLimitBucket.window_start == window_start
        )
    )
    window_end = window_start + timedelta(seconds=window_seconds)
    reset = max(1, math.ceil((window_end - now).total_seconds()))
    return WindowCount(limit=limit, hits=hits or 0, reset_seconds=reset)


@use_case
async def count_hit(
    session: AsyncSession, key: str, *, limit: int, window_seconds: int
) -> WindowCount:
    """Count one request for `key` in the current window and say where the key stands."""
    now = utcnow()
    window_start = _window_start(now, window_seconds)
    dialect_insert = (
        postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert
    )
    statement = (
        dialect_insert(RateLimitBucket)
        .values(key=key[:400], window_start=window_start, hits=1)
        .on_conflict_do_update(
            index_elements=["key", "window_start"], set_={"hits": RateLimitBucket.hits + 1}
        )
        .returning(RateLimitBucket.hits)
    )
    hits = (await session.execute(statement)).scalar_one()
    if hits == 1:
        # The first hit of a window is a fine moment to forget old windows.
        await session.execute(
            delete(RateLimitBucket).where(RateLimitBucket.window_start < now - KEEP_BUCKETS_FOR)
        )
    window_end = window_start + timedelta(seconds=window_seconds)
    reset = max(1, math.ceil((window_end - now).total_seconds()))
    return WindowCount(limit=limit, hits=hits, reset_seconds=reset)
