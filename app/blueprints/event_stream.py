"""The event streams on a lean path beside Quart: GET /p/<KEY>/events (and the header's unread
count, GET /inbox/events) is served by a small ASGI handler, and every other request (and
every stream it refuses) by Quart.

A worker holds thousands of idle streams. Through Quart each one kept its request, its
response, the tasks that wait for the body and for the client's disconnect, and their futures:
about 36 KiB of Python objects a stream. Here a stream keeps its scope, this handler's frame,
the EventStream with its generator, the broker's subscriber, and one task waiting for the
disconnect (decision 0014).

The handler answers only a request it has authorised exactly as the Quart route does: the
same quart-auth cookie, decoded by quart-auth's own `load_token` (itsdangerous, SECRET_KEY
and the QUART_AUTH_SALT), the same login session row (`login_sessions.resume_session`, which
also touches it), the same project access (`projects.project_by_key`). Anything else, a
missing or forged cookie, an ended session, a project the viewer may not read, the database
away, is handed to Quart's own connection, which answers as it always has (the login
redirect, the 404 page, the cookie deleted). Both run inside the app's ASGI middleware (the
trusted-proxy gate, the request id), since this is Quart's `asgi_http_class`.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from quart import Quart
from quart.asgi import ASGIHTTPConnection
from werkzeug.datastructures import Headers
from werkzeug.sansio.request import Request as RequestLine

from app.blueprints.guards import CONTENT_SECURITY_POLICY
from app.errors import NotFound
from app.live import Broker
from app.live.inbox import InboxStream
from app.live.stream import (
    DATABASE_TROUBLE,
    EventStream,
    StreamSettings,
    last_event_id_from,
    present_as,
)
from app.models.project import key_pattern
from app.services import login_sessions, projects

STREAM_PATH = re.compile(rf"/p/({key_pattern(any_case=True)})/events")
# The header's unread count (decision 0028): one per open page of every logged-in person, so
# as many as the board streams, and served the same lean way.
INBOX_STREAM_PATH = "/inbox/events"

# What the Quart route's answer carries: its own headers, then those guards' after_request adds
# to a logged-in answer (the x-request-id comes from the request-id middleware, on both paths).
# tests/live/test_lean_stream.py compares the two paths' bytes through hypercorn.
STREAM_HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-store"),
    (b"x-accel-buffering", b"no"),
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]


class EventStreamPath:
    """Quart's `asgi_http_class`, as a factory: a LeanEventStream for a GET of a project's
    event stream, Quart's own connection for anything else. `lean = False` sends the streams
    through Quart too (the tests compare the two)."""

    def __init__(self, app: Quart, quart_connection: type[ASGIHTTPConnection]) -> None:
        self.app = app
        self.quart_connection = quart_connection
        self.lean = True

    def __call__(self, app: Quart, scope: dict[str, Any]) -> Any:
        if (
            self.lean
            and scope["method"] == "GET"
            and not scope.get("root_path")
            and app.config["SERVER_NAME"] is None
        ):
            if (match := STREAM_PATH.fullmatch(scope["path"])) is not None:
                return LeanEventStream(self, scope, match.group(1))
            if scope["path"] == INBOX_STREAM_PATH:
                return LeanEventStream(self, scope, None)
        return self.quart_connection(app, scope)

    async def authorised_stream(
        self, scope: dict[str, Any], project_key: str | None
    ) -> EventStream | InboxStream | None:
        """The stream the Quart route would open for this request (`project_key` None: the
        person's inbox count), or None where it would refuse (or fail): then Quart answers."""
        app = self.app
        request = _request_line(scope)
        [auth] = app.extensions["QUART_AUTH"]
        if auth.mode != "cookie" or auth.cookie_name not in request.cookies:
            return None
        secret = auth.load_token(request.cookies[auth.cookie_name], app=app)
        if not secret:
            return None
        database = app.extensions["database"]
        try:
            async with database.sessionmaker() as session:
                found = await login_sessions.resume_session(
                    session, app.extensions["account_settings"], secret
                )
                if found is None:
                    return None
                auth_session, user = found
                if project_key is None:
                    return InboxStream(
                        app.extensions["inbox_broker"],
                        user.id,
                        auth_session.id,
                        heartbeat=app.config["SSE_HEARTBEAT_SECONDS"],
                        retry_ms=app.config["SSE_RETRY_MILLISECONDS"],
                    )
                project = await projects.project_by_key(session, user, project_key)
                project_id, auth_session_id = project.id, auth_session.id
                viewer = present_as(user, request.args.get("view", ""))
                user_id = user.id
            # The session has ended here: a stream holds no pooled connection while it waits.
        except (NotFound, *DATABASE_TROUBLE):
            return None
        last_event_id = last_event_id_from(
            request.headers.get("Last-Event-ID") or request.args.get("last_event_id")
        )
        broker: Broker = app.extensions["broker"]
        return EventStream(
            broker,
            project_id,
            last_event_id,
            StreamSettings.from_config(app.config),
            viewer,
            # The broker checks these every SSE_RECHECK_SECONDS, for all its streams at once.
            auth_session_id=auth_session_id,
            user_id=user_id,
        )


class LeanEventStream:
    """One request for an event stream (an ASGI HTTP handler, as Quart's connection is)."""

    __slots__ = ("path", "project_key", "scope")

    def __init__(
        self, path: EventStreamPath, scope: dict[str, Any], project_key: str | None
    ) -> None:
        self.path, self.scope, self.project_key = path, scope, project_key

    async def __call__(self, receive: Any, send: Any) -> None:
        path, scope = self.path, self.scope
        stream = await path.authorised_stream(scope, self.project_key)
        if stream is None:
            await path.quart_connection(path.app, scope)(receive, send)
            return
        await send({"type": "http.response.start", "status": 200, "headers": STREAM_HEADERS})
        # hypercorn tells of a client that left by a message to receive(), not by cancelling:
        # one task waits for it and ends the stream at its next wait.
        gone = asyncio.ensure_future(_until_disconnected(receive, stream))
        chunks = stream.chunks()
        try:
            async for chunk in chunks:
                if not stream.ended:  # else nobody is listening
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            if not stream.ended:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await chunks.aclose()
            if not gone.done():
                gone.cancel()  # the stream ended first (resync, access ended, shutdown)


async def _until_disconnected(receive: Any, stream: EventStream | InboxStream) -> None:
    try:
        while (await receive())["type"] != "http.disconnect":
            pass
    except asyncio.CancelledError:
        # Only the handler cancels this task, when its stream ended first: there is nothing
        # left to tell. Ending here, the cancelled wait's exception dies with this frame
        # instead of staying on the task with its traceback.
        return
    stream.end()


def _request_line(scope: dict[str, Any]) -> RequestLine:
    """The request as werkzeug reads it for Quart: cookies, query arguments and headers parsed
    by the same code."""
    headers = Headers()
    for name, value in scope["headers"]:
        headers.add(name.decode("latin1").title(), value.decode("latin1"))
    return RequestLine(
        scope["method"],
        scope["scheme"],
        scope.get("server"),
        scope.get("root_path", ""),
        scope["path"],
        scope["query_string"],
        headers,
        (scope.get("client") or ["<local>"])[0],
    )


def init_app(app: Quart) -> None:
    """Serve the event streams on the lean path (Quart keeps its route, for anything handed
    to it, and as the reference the tests compare with)."""
    path = EventStreamPath(app, app.asgi_http_class)
    app.asgi_http_class = path  # type: ignore[assignment]
    app.extensions["event_stream_path"] = path
