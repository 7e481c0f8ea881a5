"""How a command runs a job: on a session of the app's database, with a refusal told as the
command's error message."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import click
from quart import Quart
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import ServiceError

T = TypeVar("T")


def run_with_session(app: Quart, job: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run one job on a session of the app's database, then let the engine go. A refusal of
    the service (ServiceError) ends the command with its message, not a traceback."""

    async def run() -> T:
        database = app.extensions["database"]
        try:
            async with database.sessionmaker() as session:
                return await job(session)
        finally:
            await database.dispose()

    try:
        return asyncio.run(run())
    except ServiceError as refusal:
        raise click.ClickException(refusal.message) from refusal
