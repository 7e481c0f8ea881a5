"""The background task shared by the queue senders: woken by commits, polling for the rest."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import timedelta
from typing import ClassVar, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.web.metrics import Metrics

ReportT = TypeVar("ReportT")


def retry_delay(attempts: int, first_seconds: float, last_seconds: float) -> timedelta:
    """first, 2 x first, 4 x first, ... up to last_seconds between attempts."""
    return timedelta(seconds=min(first_seconds * 2 ** max(attempts - 1, 0), last_seconds))


@dataclass
class DeliveryReport:
    """What one round of a sender did: delivered, to be retried, failed for good."""

    delivered: int = 0
    retried: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def handled(self) -> int:
        return self.delivered + self.retried + self.failed


class BackgroundSender(ABC, Generic[ReportT]):
    """Runs `deliver_pending` in a loop from `start()` to `stop()`: after each round it waits for
    `wake()` (called when a commit queues work) or for `poll_seconds` (other workers' work, retries
    coming due). A subclass claims, sends and records; it gives its name and its logger. The
    app factory connects `wake` to the after-commit hook for its kind of work."""

    name: ClassVar[str]  # "mail sender": in the log, and hyphenated as the task's name
    log: ClassVar[logging.Logger]
    # Set by the app factory: each round's outcomes are counted for /metrics.
    metrics: Metrics | None = None

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], *, poll_seconds: float
    ) -> None:
        self.sessionmaker = sessionmaker
        self.poll_seconds = poll_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    @abstractmethod
    async def deliver_pending(self) -> ReportT:
        """Send everything that is due and report what happened."""

    async def _round(self) -> ReportT:
        """One round of the background loop."""
        return await self.deliver_pending()

    def _wait_after(self, report: ReportT) -> float:
        """Seconds to wait for a wake-up after a round that went through."""
        return self.poll_seconds

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name.replace(" ", "-"))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _count(self, report: ReportT) -> None:
        if self.metrics is None or not isinstance(report, DeliveryReport):
            return
        for result in ("delivered", "retried", "failed"):
            if count := getattr(report, result):
                self.metrics.deliveries.labels(self.name, result).inc(count)

    async def _run(self) -> None:
        while True:
            wait = self.poll_seconds
            try:
                report = await self._round()
                self._count(report)
                wait = self._wait_after(report)
            except Exception:  # a database outage must not kill the sender for good
                self.log.exception("%s: delivery round failed; retrying", self.name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=wait)
            self._wake.clear()
