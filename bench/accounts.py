"""Cost of the account requests: argon2id hash and verify, one login, one sign-up.

Run with `.venv/bin/python -m bench.accounts [--database-url URL] [--rounds N]` after `make test`
has set up the virtualenv. Uses the production hashing parameters (argon2-cffi's defaults) and a
fresh migrated database (a temporary SQLite file unless --database-url is given).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from app import create_app
from app.config import normalise_database_url
from app.db import create_engine, migrations
from app.security import PasswordHasher
from tests.pages import PASSWORD, csrf_token

Measured = Callable[[int], Awaitable[None]]


async def timings(rounds: int, step: Measured, prepare: Measured | None = None) -> list[float]:
    """Milliseconds per call of `step`; `prepare` runs before each call, untimed."""
    samples = []
    for n in range(rounds):
        if prepare is not None:
            await prepare(n)
        started = time.perf_counter()
        await step(n)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def row(name: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"| {name} | {len(samples)} | {statistics.median(samples):.1f} | {p95:.1f} |"


async def main(database_url: str | None, rounds: int) -> None:
    hasher = PasswordHasher("default")
    stored = await hasher.hash(PASSWORD)
    rows = [
        row("argon2id hash (thread)", await timings(rounds, lambda n: hasher.hash(PASSWORD))),
        row(
            "argon2id verify (thread)",
            await timings(rounds, lambda n: hasher.verify(stored, PASSWORD)),
        ),
    ]

    with tempfile.TemporaryDirectory() as scratch:
        url = normalise_database_url(
            database_url or f"sqlite+aiosqlite:///{Path(scratch) / 'bench.db'}"
        )
        engine = create_engine(url)
        await migrations.downgrade(engine, "base")
        await migrations.upgrade(engine)
        await engine.dispose()
        app = create_app(
            "testing",
            DATABASE_URL=url,
            PASSWORD_HASH_PROFILE="default",
            RATE_LIMIT_ENABLED=False,
            MAIL_BACKEND="log",
        )
        async with app.test_app() as test_app:
            # Each request comes from a new visitor whose form page was loaded beforehand.
            client, token = test_app.test_client(), ""

            async def new_visitor(n: int) -> None:
                nonlocal client, token
                client = test_app.test_client()
                token = await csrf_token(client)

            async def sign_up(n: int) -> None:
                response = await client.post(
                    "/auth/signup",
                    form={
                        "csrf_token": token,
                        "email": f"bench{n}@example.com",
                        "display_name": f"Bench {n}",
                        "password": PASSWORD,
                    },
                )
                assert response.status_code == 302, response.status_code

            async def log_in(n: int) -> None:
                response = await client.post(
                    "/auth/login",
                    form={
                        "csrf_token": token,
                        "email": f"bench{n}@example.com",
                        "password": PASSWORD,
                    },
                )
                assert response.status_code == 302, response.status_code

            rows.append(
                row(
                    "POST /auth/signup (whole request)", await timings(rounds, sign_up, new_visitor)
                )
            )
            rows.append(
                row("POST /auth/login (whole request)", await timings(rounds, log_in, new_visitor))
            )
        backend = url.split(":", 1)[0]

    print(f"Account costs on {backend}, argon2-cffi default parameters (ms)\n")
    print("| what | runs | median | p95 |\n|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="a database to migrate and use (emptied first)")
    parser.add_argument("--rounds", type=int, default=20)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.database_url, arguments.rounds))
