"""The live layer: project events fanned out to open pages over server-sent events.

A commit that writes activity rows makes them reach every worker's broker: on PostgreSQL by a
NOTIFY sent in that very transaction (delivered at commit) to each worker's LISTEN connection,
on SQLite (one process) by the after-commit hook create_app connects to `Broker.wake`. Each
broker reads the new rows once, renders them once, and queues them to its own subscribers
(decision 0007).
"""

from __future__ import annotations

from app.live.broker import AccessCheck, Broker
from app.live.cards import CardCache
from app.live.listener import PostgresListener

__all__ = ["AccessCheck", "Broker", "CardCache", "PostgresListener"]
