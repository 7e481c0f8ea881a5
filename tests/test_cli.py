"""Admin commands, run as an admin would: `quart --app app ...` in a shell."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from quart import Quart
from sqlalchemy import select

from app.models import User
from tests.web import log_in

PROJECT_ROOT = Path(__file__).resolve().parents[1]


async def run_quart(database_url: str, *args: str, stdin: str = "") -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "quart",
        "--app",
        "app",
        *args,
        cwd=PROJECT_ROOT,
        env={**os.environ, "ISSUES_CONFIG": "testing", "DATABASE_URL": database_url},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(stdin.encode()), 60)
    return process.returncode, output.decode()


async def test_create_admin_prompts_for_the_password_and_the_admin_can_log_in(
    app: Quart, client, database_url: str
) -> None:
    code, output = await run_quart(
        database_url,
        "create-admin",
        "Root@Example.com",
        "--name",
        "Root",
        stdin="a long admin passphrase\na long admin passphrase\n",
    )
    assert code == 0, output
    assert "root@example.com is a site administrator" in output
    async with app.extensions["database"].sessionmaker() as session:
        admin = await session.scalar(select(User).where(User.email == "root@example.com"))
    assert admin.is_admin and admin.email_verified_at is not None
    assert (await log_in(client, "root@example.com", "a long admin passphrase")).status_code == 302


async def test_create_admin_refuses_a_weak_password(database_url: str) -> None:
    code, output = await run_quart(
        database_url, "create-admin", "root@example.com", stdin="short\nshort\n"
    )
    assert code != 0
    assert "at least 10 characters" in output


async def test_seed_demo_fills_an_empty_database_and_refuses_a_used_one(
    app: Quart, client, database_url: str
) -> None:
    code, output = await run_quart(database_url, "seed-demo", "--issues-per-project", "4")
    assert code == 0, output
    assert "Created 12 issues" in output
    assert (await log_in(client, "ada@example.com", "demo password 2026")).status_code == 302
    page = await (await client.get("/p/WEB?q=sort:number-asc")).get_data(as_text=True)
    assert "WEB-1" in page
    code, output = await run_quart(database_url, "seed-demo")
    assert code != 0 and "fills only an empty one" in output
