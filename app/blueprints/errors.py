"""Error answers: an HTML page for browsers, JSON for API clients; a refusal is never a 500,
and neither is a database that cannot be reached (503 with Retry-After)."""

from __future__ import annotations

import errno
import logging
import socket

import asyncpg
from quart import Quart, Response, g, jsonify, make_response, render_template, request
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.exceptions import HTTPException

from app.blueprints.guards import wants_json
from app.errors import ServiceError
from app.web.logs import current_request_id

log = logging.getLogger("issues.errors")

# PostgreSQL restarts in seconds; a client (or the browser's user) may try again this soon.
DATABASE_RETRY_AFTER_SECONDS = 5

_NETWORK_ERRNOS = {
    errno.ECONNREFUSED,
    errno.ECONNRESET,
    errno.ECONNABORTED,
    errno.EHOSTUNREACH,
    errno.ENETUNREACH,
    errno.ETIMEDOUT,
    errno.EPIPE,
}

# What a lost or refused database connection looks like, raw or under SQLAlchemy's wrapper:
# the server is gone, shutting down or starting up, or no pooled connection came in time.
_OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    PoolTimeoutError,
    ConnectionError,
    TimeoutError,
    socket.gaierror,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,  # admin shutdown, starting up, crash
)


def is_database_outage(error: BaseException) -> bool:
    """Whether `error` says the database could not be reached, as opposed to it refusing a
    query (a constraint, a bad statement): the former is worth a retry, the latter a bug."""
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    # A network error of our own (a client gone mid-body, a webhook's DNS) is a bug or a 4xx,
    # not an outage: bare OSErrors count only when the database's driver or pool raised them
    # (opening a connection to a server that is down surfaces unwrapped).
    if not isinstance(error, DBAPIError | PoolTimeoutError) and not _raised_by_database(error):
        return False
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, _OUTAGE_ERRORS):
            return True
        if isinstance(current, OSError) and current.errno in _NETWORK_ERRNOS:
            return True
        # SQLAlchemy keeps the driver's error in .orig; the asyncpg adapter chains the raw one.
        wrapped = current.orig if isinstance(current, DBAPIError) else None
        current = wrapped if isinstance(wrapped, BaseException) else current.__cause__
    return False


_DATABASE_MODULES = ("sqlalchemy.", "asyncpg.", "aiosqlite.")


def _raised_by_database(error: BaseException) -> bool:
    traceback = error.__traceback__
    while traceback is not None:
        module = traceback.tb_frame.f_globals.get("__name__", "")
        if module.startswith(_DATABASE_MODULES):
            return True
        traceback = traceback.tb_next
    return False


async def _error_answer(
    status: int, code: str, message: str, field: str | None = None
) -> tuple[Response | str, int]:
    if wants_json():
        return jsonify(error={"code": code, "message": message, "field": field}), status
    return await render_template(
        "errors/error.html", status=status, message=message, request_id=current_request_id()
    ), status


async def _database_unavailable(error: Exception) -> Response:
    if not is_database_outage(error):
        raise error  # a real failure: Quart answers 500 and logs it with its traceback
    # One line, no traceback: an outage makes many of these, and the cause is not in our code.
    log.warning(
        "database unavailable: %s %s answered 503 (%s: %s)",
        request.method,
        request.path,
        type(error).__name__,
        str(error).splitlines()[0] if str(error) else "",
    )
    # The page's sidebar would ask the database who is logged in: show the page as to a
    # visitor instead of failing a second time while rendering it.
    g.user, g.auth_session = None, None
    body, status = await _error_answer(
        503,
        "unavailable",
        "The database is briefly unavailable. Please try again in a few seconds.",
    )
    response = await make_response(body, status)
    response.headers["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
    return response


def init_app(app: Quart) -> None:
    @app.errorhandler(ServiceError)
    async def service_refused(error: ServiceError) -> Response:
        body, status = await _error_answer(error.status, error.code, error.message, error.field)
        response = await make_response(body, status)
        if error.retry_after is not None:
            response.headers["Retry-After"] = str(error.retry_after)
        return response

    # The classes an outage can surface as; each handler answers 503 only for an outage.
    for error_class in (
        DBAPIError,
        PoolTimeoutError,
        OSError,
        asyncpg.PostgresConnectionError,
        asyncpg.exceptions.OperatorInterventionError,
    ):
        app.register_error_handler(error_class, _database_unavailable)

    @app.errorhandler(HTTPException)
    async def http_error(error: HTTPException) -> Response:
        status = error.code or 500
        code = (error.name or "error").lower().replace(" ", "_")
        body, status = await _error_answer(status, code, error.description or error.name)
        response = await make_response(body, status)
        # Keep what the error says besides its body: Allow on a 405, WWW-Authenticate on a 401.
        for name, value in error.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        return response
