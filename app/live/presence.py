"""Presence: who has a project's board or one of its issues open right now, across workers.

Each worker knows its own viewers (its open streams). On PostgreSQL a worker announces its
viewers of a project to the others by NOTIFY on `issues_presence` whenever they change, and
again every few seconds so that a worker that died is forgotten when its announcements stop.
Presence is not part of the event log: it is sent as an `event: presence` without an `id`, so it
never moves a client's Last-Event-ID (decision 0009).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

# Enough for any meeting; keeps one announcement under PostgreSQL's 8,000-byte NOTIFY limit.
MAX_ANNOUNCED_VIEWERS = 40
ANNOUNCE_LIMIT_BYTES = 7500
# A peer's viewers are forgotten when it has not repeated them for this long.
PEER_TIMEOUT_SECONDS = 40.0
DEBOUNCE_SECONDS = 0.1


@dataclass(frozen=True)
class Viewer:
    """One person on one page: `view` is "board" or an issue key."""

    user_id: int
    name: str
    initials: str
    view: str

    def as_list(self) -> list[int | str]:
        return [self.user_id, self.name, self.initials, self.view]

    @classmethod
    def from_list(cls, raw: object) -> Viewer | None:
        if not (isinstance(raw, list) and len(raw) == 4):
            return None
        user_id, name, initials, view = raw
        if not (isinstance(user_id, int) and all(isinstance(s, str) for s in raw[1:])):
            return None
        return cls(user_id, name[:100], initials[:4], view[:40])


Announce = Callable[[str], Awaitable[None]]


@dataclass
class _Peer:
    viewers: tuple[Viewer, ...]
    expires_at: float


@dataclass
class Presence:
    """This worker's view of every project's viewers. `send(project_id, encoded)` delivers a
    presence event to the local streams of a project (the broker supplies it)."""

    send: Callable[[int, bytes], None]
    worker_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    announce: Announce | None = None  # set by the PostgreSQL listener
    local: dict[int, Counter[Viewer]] = field(default_factory=dict)
    peers: dict[int, dict[str, _Peer]] = field(default_factory=dict)
    _scheduled: dict[int, asyncio.TimerHandle] = field(default_factory=dict)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    # --- Local viewers -------------------------------------------------------------------------
    def joined(self, project_id: int, viewer: Viewer) -> None:
        viewers = self.local.setdefault(project_id, Counter())
        first_here = not viewers
        viewers[viewer] += 1
        self._changed(project_id, ask=first_here)

    def left(self, project_id: int, viewer: Viewer) -> None:
        viewers = self.local.get(project_id)
        if not viewers:
            return
        viewers[viewer] -= 1
        if viewers[viewer] <= 0:
            del viewers[viewer]
        if not viewers:
            del self.local[project_id]
        self._changed(project_id, ask=False)

    def viewers(self, project_id: int) -> list[Viewer]:
        """Everyone on the project's pages, here and on the other workers, each once."""
        now = time.monotonic()
        seen = dict.fromkeys(self.local.get(project_id, ()))
        for peer in self.peers.get(project_id, {}).values():
            if peer.expires_at > now:
                seen.update(dict.fromkeys(peer.viewers))
        return sorted(seen, key=lambda v: (v.name.lower(), v.user_id, v.view))

    def encoded(self, project_id: int) -> bytes:
        viewers = [
            {"id": v.user_id, "name": v.name, "initials": v.initials, "view": v.view}
            for v in self.viewers(project_id)
        ]
        return f"event: presence\ndata: {json.dumps({'viewers': viewers})}\n\n".encode()

    def _changed(self, project_id: int, *, ask: bool) -> None:
        self._schedule_send(project_id)
        if self.announce is not None:
            self._spawn(self._announce(project_id, ask=ask))

    def _schedule_send(self, project_id: int) -> None:
        # Ten people opening the board at once make one presence event, not ten.
        if project_id in self._scheduled:
            return
        loop = asyncio.get_running_loop()
        self._scheduled[project_id] = loop.call_later(DEBOUNCE_SECONDS, self._send, project_id)

    def _send(self, project_id: int) -> None:
        self._scheduled.pop(project_id, None)
        self.send(project_id, self.encoded(project_id))

    # --- Other workers -------------------------------------------------------------------------
    def announcement(self, project_id: int, *, ask: bool = False) -> str:
        viewers = list(self.local.get(project_id, ()))[:MAX_ANNOUNCED_VIEWERS]
        while True:
            payload = json.dumps(
                {
                    "w": self.worker_id,
                    "p": project_id,
                    "a": ask,
                    "v": [v.as_list() for v in viewers],
                },
                separators=(",", ":"),
            )
            if len(payload.encode()) <= ANNOUNCE_LIMIT_BYTES or not viewers:
                return payload
            viewers = viewers[: len(viewers) // 2]

    async def _announce(self, project_id: int, *, ask: bool) -> None:
        if self.announce is not None:
            await self.announce(self.announcement(project_id, ask=ask))

    async def announce_all(self) -> None:
        """Repeat this worker's viewers (every few seconds), and forget silent peers."""
        for project_id in list(self.local):
            await self._announce(project_id, ask=False)
        now = time.monotonic()
        for project_id, peers in list(self.peers.items()):
            expired = [worker for worker, peer in peers.items() if peer.expires_at <= now]
            for worker in expired:
                del peers[worker]
            if not peers:
                del self.peers[project_id]
            if expired:
                self._schedule_send(project_id)

    def heard(self, payload: str) -> None:
        """An announcement from a worker (ours too: NOTIFY reaches its sender)."""
        try:
            message = json.loads(payload)
            worker, project_id = str(message["w"]), int(message["p"])
            viewers = tuple(v for v in map(Viewer.from_list, message["v"]) if v is not None)
        except (ValueError, KeyError, TypeError):
            return
        if worker == self.worker_id:
            return
        peers = self.peers.setdefault(project_id, {})
        before = peers.get(worker)
        if viewers:
            peers[worker] = _Peer(viewers, time.monotonic() + PEER_TIMEOUT_SECONDS)
        else:
            peers.pop(worker, None)
        if before is None or before.viewers != viewers:
            self._schedule_send(project_id)
        # A worker with its first viewer asks the others to say who they have right away.
        if message.get("a") and project_id in self.local:
            self._spawn(self._announce(project_id, ask=False))

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def close(self) -> None:
        for handle in self._scheduled.values():
            handle.cancel()
        self._scheduled.clear()
        for task in self._tasks:
            task.cancel()
