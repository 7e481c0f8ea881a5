"""A lean HTTP/1.1 client for load on loopback: one keep-alive connection, cookies, CSRF.

Written on asyncio streams rather than a client library so that the load generator, which
shares the machine's cores with the server, spends as little as it can per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from dataclasses import dataclass
from urllib.parse import urlencode

CSRF_INPUT = re.compile(rb'name="csrf_token" value="([^"]+)"')
CSRF_DATA = re.compile(rb'data-csrf="([^"]+)"')


@dataclass
class Answer:
    status: int
    headers: dict[str, str]  # lower-case names; Set-Cookie lines are in `cookies`
    cookies: list[str]
    body: bytes


class ConnectionLost(Exception):
    """The server closed the connection before answering."""


class Browser:
    """One keep-alive connection with its own cookie jar, as one browser tab would have."""

    def __init__(self, port: int, cookies: dict[str, str] | None = None) -> None:
        self.port = port
        self.cookies = dict(cookies or {})
        self.csrf = ""
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> Answer:
        return await self.request("GET", path)

    async def post(self, path: str, form: dict[str, str | int], *, json: bool = False) -> Answer:
        """Submit a form as our pages do, with this session's CSRF token."""
        body = urlencode({"csrf_token": self.csrf, **form}).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if json:
            headers["Accept"] = "application/json"
        return await self.request("POST", path, body=body, headers=headers)

    async def learn_csrf(self, path: str) -> Answer:
        """Load a page that carries a form and keep its CSRF token for later posts."""
        answer = await self.get(path)
        found = CSRF_INPUT.search(answer.body) or CSRF_DATA.search(answer.body)
        if found is None:
            raise RuntimeError(f"no CSRF token on {path} ({answer.status})")
        self.csrf = found.group(1).decode()
        return answer

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
    ) -> Answer:
        # A kept-alive connection may have been closed by the server while idle; one retry
        # on a fresh connection covers that (the server saw nothing of the first try).
        for attempt in (1, 2):
            reused = self._writer is not None
            try:
                return await self._exchange(method, path, body, headers or {})
            except (ConnectionLost, ConnectionError):
                await self.close()
                if attempt == 2 or not reused:
                    raise
        raise AssertionError("unreachable")

    async def _exchange(
        self, method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> Answer:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(
                "127.0.0.1", self.port, limit=1 << 22
            )
        assert self._reader is not None
        lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}"]
        if self.cookies:
            lines.append("Cookie: " + "; ".join(f"{k}={v}" for k, v in self.cookies.items()))
        if body or method == "POST":
            lines.append(f"Content-Length: {len(body)}")
        lines += [f"{name}: {value}" for name, value in headers.items()]
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        await self._writer.drain()
        try:
            head = await self._reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as error:
            raise ConnectionLost from error
        status_line, *header_lines = head[:-4].decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        answer_headers: dict[str, str] = {}
        cookies: list[str] = []
        for line in header_lines:
            name, _, value = line.partition(":")
            name, value = name.strip().lower(), value.strip()
            if name == "set-cookie":
                cookies.append(value)
            else:
                answer_headers[name] = value
        if answer_headers.get("transfer-encoding", "").lower() == "chunked":
            content = await self._read_chunks()
        else:
            content = await self._reader.readexactly(int(answer_headers.get("content-length", 0)))
        for cookie in cookies:
            self._keep_cookie(cookie)
        if answer_headers.get("connection", "").lower() == "close":
            await self.close()
        return Answer(status, answer_headers, cookies, content)

    async def _read_chunks(self) -> bytes:
        assert self._reader is not None
        parts = []
        while True:
            size = int((await self._reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self._reader.readuntil(b"\r\n")
                return b"".join(parts)
            parts.append(await self._reader.readexactly(size))
            await self._reader.readexactly(2)

    def _keep_cookie(self, line: str) -> None:
        pair, *attributes = line.split(";")
        name, _, value = pair.strip().partition("=")
        expired = any(a.strip().lower() in ("max-age=0", "max-age=-1") for a in attributes)
        if expired or not value or value == '""':
            self.cookies.pop(name, None)
        else:
            self.cookies[name] = value

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError):
                await self._writer.wait_closed()
        self._reader = self._writer = None
