"""Logging in: the account's throttle counts every attempt before the password is checked."""

from __future__ import annotations

import asyncio

from quart import Quart

from app.errors import Invalid, TooManyRequests
from app.services import login_sessions
from tests.factories import make_user
from tests.pages import PASSWORD


async def test_parallel_guesses_for_one_account_are_all_counted(app: Quart) -> None:
    """Twenty guesses at once: they queue on the account's throttle row, so only the free
    ones reach the password check and the rest wait, as if they had come one by one."""
    database, settings = app.extensions["database"], app.extensions["account_settings"]
    async with database.sessionmaker() as session:
        await make_user(
            session, email="ann@example.com", password_hash=await settings.hasher.hash(PASSWORD)
        )

    async def guess(n: int) -> str:
        async with database.sessionmaker() as session:
            try:
                await login_sessions.log_in(
                    session,
                    settings,
                    email="ann@example.com",
                    password=f"wrong guess {n}",
                    client_address=f"203.0.113.{n}",
                )
            except Invalid:
                return "checked"
            except TooManyRequests:
                return "waits"
        return "logged in"

    outcomes = await asyncio.gather(*(guess(n) for n in range(20)))
    assert outcomes.count("checked") == login_sessions.FREE_LOGIN_FAILURES + 1
    assert outcomes.count("waits") == 20 - outcomes.count("checked")
