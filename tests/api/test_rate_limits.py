"""Rate limits per token and per anonymous client, counted in the database so that two workers
(two apps on one database here) share them; answered with 429, Retry-After and RateLimit-*."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app import create_app
from tests.api.conftest import build_api_world
from tests.conftest import app_settings
from tests.mailcatcher import MailCatcher


async def test_a_tokens_limit_is_shared_by_two_workers(
    database_url: str, mailbox: MailCatcher
) -> None:
    settings = app_settings(database_url, mailbox, API_RATE_LIMIT=4, API_ANONYMOUS_RATE_LIMIT=2)
    # A long window, so that the test never straddles two.
    settings["API_RATE_LIMIT_WINDOW_SECONDS"] = 3600
    first, second = create_app("testing", **settings), create_app("testing", **settings)
    async with first.test_app(), second.test_app():
        session: AsyncSession
        async with first.extensions["database"].sessionmaker() as session:
            world = await build_api_world(session)
        auth = world.auth("member")
        workers = [first.test_client(), second.test_client()]
        answers = [await workers[n % 2].get("/api/v1/me", headers=auth) for n in range(5)]
        assert [answer.status_code for answer in answers] == [200, 200, 200, 200, 429]
        assert [answer.headers["RateLimit-Remaining"] for answer in answers] == [
            "3",
            "2",
            "1",
            "0",
            "0",
        ]
        refused = answers[-1]
        assert refused.headers["RateLimit-Limit"] == "4"
        assert 0 < int(refused.headers["Retry-After"]) <= 3600
        assert refused.headers["RateLimit-Reset"] == refused.headers["Retry-After"]
        assert (await refused.get_json())["error"]["code"] == "too_many_requests"

        # Another token has a window of its own.
        other = await workers[1].get("/api/v1/me", headers=world.auth("owner"))
        assert other.status_code == 200

        # Anonymous reads of public projects are counted per client address.
        anonymous = [await workers[n % 2].get("/api/v1/projects/PUB/issues") for n in range(3)]
        assert [answer.status_code for answer in anonymous] == [200, 200, 429]
