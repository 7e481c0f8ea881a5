"""Prometheus metrics in multiprocess mode (decision 0026): each hypercorn worker writes its
counts to memory-mapped files in one folder per server, and a scrape of /metrics on any worker
reads them all, so every worker is counted whichever one answers.

The folder is METRICS_DIR (default: the system's temporary folder) / `server-<pid of the
hypercorn process that started the workers>`. A new server start has a new pid, hence fresh
counters; folders of servers that are gone are removed at start."""

from __future__ import annotations

import ipaddress
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import values as metric_values
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from quart import Quart, Response, g, request
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import ConfigurationError

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Page latencies: most answers take milliseconds; the top buckets catch a stalled database.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Metrics:
    """The metrics this process writes. Made once per process (the files are per process), the
    first time an app starts in it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        # Multiprocess values read this when they open their files; prometheus_client chose
        # its value class at import, before the app could set the folder, so choose it here.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
        metric_values.ValueClass = metric_values.MultiProcessValue()
        # Not registered anywhere: a scrape reads the files, never these objects.
        self.requests = Counter(
            "issues_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=None,
        )
        self.latency = Histogram(
            "issues_http_request_duration_seconds",
            "Time to the response's headers, by route template and method.",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=None,
        )
        self.workers = Gauge(
            "issues_worker_processes",
            "Worker processes serving (each counts 1 while it runs).",
            multiprocess_mode="livesum",
            registry=None,
        )
        self.open_streams = Gauge(
            "issues_event_streams_open",
            "Live event streams open now, all workers together.",
            multiprocess_mode="livesum",
            registry=None,
        )
        self.events_fanned_out = Counter(
            "issues_events_fanned_out",
            "Activity rows rendered once per worker for its subscribers.",
            registry=None,
        )
        self.events_delivered = Counter(
            "issues_events_delivered",
            "Events handed to subscribers (one per subscriber per event).",
            registry=None,
        )
        self.deliveries = Counter(
            "issues_outbound_deliveries",
            "Mail and webhook send attempts, by sender and result (delivered, retried, failed).",
            ["sender", "result"],
            registry=None,
        )
        self.pool_in_use = Gauge(
            "issues_db_pool_connections_in_use",
            "Database connections checked out of the workers' pools now.",
            multiprocess_mode="livesum",
            registry=None,
        )
        self.pool_capacity = Gauge(
            "issues_db_pool_capacity",
            "Connections the workers' pools may open (pool size plus overflow).",
            multiprocess_mode="livesum",
            registry=None,
        )


_metrics: Metrics | None = None


def current() -> Metrics | None:
    """This process's metrics, or None before any app has started in it."""
    return _metrics


def server_directory(base: Path, server_pid: int) -> Path:
    return base / f"server-{server_pid}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_gone_servers(base: Path, keep: Path) -> None:
    for folder in base.glob("server-*"):
        pid = folder.name.removeprefix("server-")
        if folder != keep and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _forget_gone_workers(directory: Path) -> None:
    """A worker killed without its shutdown hook leaves its live gauges (streams, pool) behind."""
    for path in directory.glob("gauge_live*_*.db"):
        pid = path.stem.rsplit("_", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            mark_process_dead(int(pid), str(directory))


def start(config: dict[str, Any]) -> Metrics:
    """This process's metrics, made on first use in the server's folder."""
    global _metrics
    if _metrics is None:
        base = Path(config["METRICS_DIR"] or Path(tempfile.gettempdir()) / "issues-metrics")
        # hypercorn's workers are children of the server process; anything else (the dev
        # server, tests) has no such parent of its own, and counts in its parent's folder.
        directory = server_directory(base, os.getppid())
        directory.mkdir(parents=True, exist_ok=True)
        _remove_gone_servers(base, keep=directory)
        _forget_gone_workers(directory)
        _metrics = Metrics(directory)
    return _metrics


def parse_allowed(value: str) -> list[Network]:
    """The networks of METRICS_ALLOW (comma-separated addresses or networks)."""
    try:
        return [
            ipaddress.ip_network(part.strip(), strict=False)
            for part in value.split(",")
            if part.strip()
        ]
    except ValueError as error:
        raise ConfigurationError(f"METRICS_ALLOW: {error}") from error


def allowed(networks: Iterable[Network], address: str) -> bool:
    try:
        client = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(client in network for network in networks)


@dataclass(frozen=True)
class QueueDepth:
    """A delivery queue's state, read from the database at scrape time."""

    queue: str
    pending: int
    failed: int
    oldest_due_seconds: float


class _QueueCollector:
    """The depths read for this scrape, as gauges (the database is the truth; no worker's
    count of them would be)."""

    def __init__(self, depths: list[QueueDepth]) -> None:
        self.depths = depths

    def collect(self) -> Iterator[Metric]:
        pending = GaugeMetricFamily(
            "issues_queue_pending", "Messages waiting to be sent.", labels=["queue"]
        )
        failed = GaugeMetricFamily(
            "issues_queue_failed", "Messages given up on, until retried.", labels=["queue"]
        )
        overdue = GaugeMetricFamily(
            "issues_queue_oldest_due_seconds",
            "How long the oldest due pending message has waited (0: none is due).",
            labels=["queue"],
        )
        for depth in self.depths:
            pending.add_metric([depth.queue], depth.pending)
            failed.add_metric([depth.queue], depth.failed)
            overdue.add_metric([depth.queue], depth.oldest_due_seconds)
        yield from (pending, failed, overdue)


def exposition(directory: Path, depths: list[QueueDepth]) -> bytes:
    """The text a scrape gets: every worker's files, and the queues. Reads files: call it in a
    thread."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))
    registry.register(_QueueCollector(depths))
    return generate_latest(registry)


def watch_pool(metrics: Metrics, engine: AsyncEngine) -> None:
    """Count the connections this worker's pool has out, through the pool's own events."""
    pool = engine.sync_engine.pool
    if hasattr(pool, "size"):  # QueuePool; SQLite's single shared connection has none
        metrics.pool_capacity.inc(pool.size() + max(pool._max_overflow, 0))

    @event.listens_for(engine.sync_engine, "checkout")
    def checked_out(*_: Any) -> None:
        metrics.pool_in_use.inc()

    @event.listens_for(engine.sync_engine, "checkin")
    def checked_in(*_: Any) -> None:
        metrics.pool_in_use.dec()


def init_app(app: Quart, engine: AsyncEngine) -> None:
    """Time every request Quart answers (event streams on the lean path are counted as open
    streams instead), and count this worker while it serves."""
    metrics = start(app.config)
    app.extensions["metrics"] = metrics
    app.config["METRICS_ALLOW_NETWORKS"] = parse_allowed(app.config["METRICS_ALLOW"])

    @app.before_serving
    async def serving() -> None:
        watch_pool(metrics, engine)
        metrics.workers.inc()

    @app.after_serving
    async def stopping() -> None:
        # Its streams and connections have been given back by now; a worker killed before
        # this runs is forgotten by the next start (_forget_gone_workers).
        metrics.workers.dec()

    @app.before_request
    async def started() -> None:
        g.metrics_started = time.perf_counter()

    @app.after_request
    async def answered(response: Response) -> Response:
        started_at = g.pop("metrics_started", None)
        if started_at is not None:
            rule = request.url_rule
            route = rule.rule if rule is not None else "unmatched"
            metrics.latency.labels(route, request.method).observe(time.perf_counter() - started_at)
            metrics.requests.labels(route, request.method, str(response.status_code)).inc()
        return response
