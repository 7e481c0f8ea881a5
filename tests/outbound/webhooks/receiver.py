"""A real HTTP receiver for webhook tests: an asyncio server on a free loopback port (h11 parses
the requests) that records each one and answers with the statuses a test scripts."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
from collections import deque
from dataclasses import dataclass
from typing import Any

import h11


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    def signature_is_valid(self, secret: str) -> bool:
        """What a receiver should do: recompute the HMAC of "<timestamp>.<body>"."""
        signed = self.headers["x-issues-timestamp"].encode() + b"." + self.body
        expected = "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, self.headers["x-issues-signature"])


class Receiver:
    """Answers each POST with the next scripted status (200 once the script is used up),
    after `delay` seconds. `stop()` closes the port, `start()` opens the same one again."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.answers: deque[int] = deque()
        self.delay = 0.0
        self.port = 0
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/issues"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def delivery_ids(self) -> list[str]:
        return [request.headers["x-issues-delivery"] for request in self.requests]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = h11.Connection(h11.SERVER)
        try:
            while True:
                request, body = await self._read_request(connection, reader)
                if request is None:
                    return
                self.requests.append(
                    Received(
                        request.method.decode(),
                        request.target.decode(),
                        {name.decode(): value.decode() for name, value in request.headers},
                        body,
                    )
                )
                if self.delay:
                    await asyncio.sleep(self.delay)
                status = self.answers.popleft() if self.answers else 200
                answer = b"ok" if status < 400 else b"no"
                writer.write(
                    connection.send(
                        h11.Response(status_code=status, headers=[("content-length", "2")])
                    )
                )
                writer.write(connection.send(h11.Data(data=answer)))
                writer.write(connection.send(h11.EndOfMessage()))
                await writer.drain()
                connection.start_next_cycle()
        except (h11.ProtocolError, ConnectionError):
            return
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    @staticmethod
    async def _read_request(
        connection: h11.Connection, reader: asyncio.StreamReader
    ) -> tuple[h11.Request | None, bytes]:
        request: h11.Request | None = None
        body = b""
        while True:
            event = connection.next_event()
            if event is h11.NEED_DATA:
                data = await reader.read(65536)
                connection.receive_data(data)
                if not data and request is None:
                    return None, b""
                continue
            if isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                return request, body
            elif isinstance(event, h11.ConnectionClosed):
                return None, b""
