"""The one transaction shape: a use case's body writes, `use_case` begins and commits it, or rolls
it back and leaves nothing."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Concatenate, ParamSpec, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from app.db import begin_writing
from app.services.activity import take_numbers

P = ParamSpec("P")
T = TypeVar("T")


def use_case(
    function: Callable[Concatenate[AsyncSession, P], Awaitable[T]],
) -> Callable[Concatenate[AsyncSession, P], Awaitable[T]]:
    """Run a use case in a transaction of its own: committed when the body returns, rolled back
    if it (or the commit) raises. Bodies never commit themselves.

    A read transaction the caller left open is ended first (it holds no changes: routes only
    read before calling a use case). On SQLite the new transaction begins IMMEDIATE so that
    concurrent writers queue on the lock instead of failing. A refusal writes no half row and
    releases its locks at once; like any rollback it expires the session's objects, which is why
    the request's user is kept detached from the session.
    """

    @functools.wraps(function)
    async def run(session: AsyncSession, *args: P.args, **kwargs: P.kwargs) -> T:
        if session.in_transaction():
            await session.commit()
        await begin_writing(session)
        try:
            result = await function(session, *args, **kwargs)
            await take_numbers(session)  # the project's counters last: held only to the commit
            await session.commit()
        except BaseException:
            await session.rollback()
            raise
        return result

    return run
