"""Driving the pages as a browser would: forms with their CSRF token, cookies kept."""

from __future__ import annotations

import re
from typing import Any

from quart.typing import TestClientProtocol

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def csrf_token(client: TestClientProtocol) -> str:
    """This session's CSRF token, read from a page that carries it (logged in or not)."""
    for path in ("/auth/signup", "/auth/login", "/account/"):
        page = await (await client.get(path)).get_data(as_text=True)
        if match := _CSRF.search(page):
            return match.group(1)
    raise AssertionError("no page carried a CSRF token")


async def submit(
    client: TestClientProtocol,
    path: str,
    form: dict[str, str] | None = None,
    *,
    headers: dict[str, str] | None = None,
) -> Any:
    """POST a form as our own page would, with this session's CSRF token."""
    token = await csrf_token(client)
    return await client.post(
        path, form={"csrf_token": token, **(form or {})}, headers=headers or {}
    )


async def text_of(response: Any) -> str:
    return await response.get_data(as_text=True)


PASSWORD = "correct horse battery"


async def sign_up(
    client: TestClientProtocol, email: str, *, name: str = "Ann Example", password: str = PASSWORD
) -> Any:
    return await submit(
        client,
        "/auth/signup",
        {"email": email, "display_name": name, "password": password},
    )


async def log_in(
    client: TestClientProtocol, email: str, password: str = PASSWORD, **extra: str
) -> Any:
    return await submit(client, "/auth/login", {"email": email, "password": password, **extra})
