"""Who calls the API and how often: Bearer tokens or the browser's session, scopes, per-token
and per-client rate limits, and the body size limit."""

from __future__ import annotations

from typing import Any

from quart import Response, current_app, g, request
from werkzeug.exceptions import RequestEntityTooLarge, Unauthorized

from app.blueprints.guards import UNSAFE_METHODS, client_address, current_account
from app.db import get_session
from app.errors import Forbidden, TooManyRequests
from app.models import ApiToken, User
from app.services import api_tokens, rate_limits

WWW_AUTHENTICATE = 'Bearer realm="issues"'


class Unauthenticated(Unauthorized):
    """401 with the challenge that says how to authenticate."""

    def get_headers(self, *args: Any, **kwargs: Any) -> list[tuple[str, str]]:
        return [*super().get_headers(*args, **kwargs), ("WWW-Authenticate", WWW_AUTHENTICATE)]


def caller() -> User | None:
    """The user the request acts for: the token's owner, the session's user, or None."""
    return current_account()


def acting_user() -> User:
    """The caller, who must be someone: anonymous callers may only read."""
    user = current_account()
    if user is None:
        raise Unauthenticated("Send a personal access token: Authorization: Bearer <token>.")
    return user


def current_token() -> ApiToken | None:
    return g.get("api_token")


async def authenticate() -> None:
    """Resolve a Bearer token when one is sent (and then never the cookie); else keep the
    session's user that the guards loaded, whose unsafe requests the guards checked for CSRF."""
    g.api_token = None
    header = request.headers.get("Authorization")
    if header is None:
        if current_account() is None and request.method in UNSAFE_METHODS:
            raise Unauthenticated("Send a personal access token: Authorization: Bearer <token>.")
        return
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Unauthenticated("Use Authorization: Bearer <token>.")
    session = get_session()
    found = await api_tokens.resolve_token(session, secret.strip())
    if found is None:
        g.user = None
        raise Unauthenticated("This token is unknown, expired or revoked.")
    token, user = found
    # Detached, like the session's user: a refused use case's rollback must not expire them.
    session.expunge(token)
    session.expunge(user)
    g.user, g.auth_session, g.api_token = user, None, token
    if request.method in UNSAFE_METHODS and not token.can_write:
        raise Forbidden("This token may only read: create a read-write token to make changes.")


async def count_request() -> None:
    """One hit in the caller's window: per token, per logged-in user, or per client address."""
    config = current_app.config
    if not config["RATE_LIMIT_ENABLED"]:
        return
    token, user = current_token(), current_account()
    if token is not None:
        key, limit = f"api:token:{token.id}", config["API_RATE_LIMIT"]
    elif user is not None:
        key, limit = f"api:user:{user.id}", config["API_RATE_LIMIT"]
    else:
        key, limit = f"api:client:{client_address()}", config["API_ANONYMOUS_RATE_LIMIT"]
    count = await rate_limits.count_hit(
        get_session(), key, limit=limit, window_seconds=config["API_RATE_LIMIT_WINDOW_SECONDS"]
    )
    g.api_rate = count
    if count.exceeded:
        raise TooManyRequests(
            count.reset_seconds,
            f"Rate limit of {limit} requests exceeded; try again in {count.reset_seconds} s.",
        )


async def limit_body() -> None:
    """API bodies are small JSON documents: refuse large ones before anything parses them."""
    if request.method not in UNSAFE_METHODS:
        return
    view = current_app.view_functions.get(request.endpoint or "")
    if getattr(view, "streams_its_body", False):
        return  # an upload: it checks its own, larger limit and streams to disk
    limit = current_app.config["API_MAX_BODY_BYTES"]
    if request.content_length is not None and request.content_length > limit:
        raise RequestEntityTooLarge(f"A request body is at most {limit} bytes.")
    # A chunked body has no Content-Length: read it (the app-wide limit bounds that) and measure.
    if len(await request.get_data()) > limit:
        raise RequestEntityTooLarge(f"A request body is at most {limit} bytes.")


async def rate_limit_headers(response: Response) -> Response:
    count = g.get("api_rate")
    if count is not None:
        response.headers["RateLimit-Limit"] = str(count.limit)
        response.headers["RateLimit-Remaining"] = str(count.remaining)
        response.headers["RateLimit-Reset"] = str(count.reset_seconds)
    # Answers depend on who asks; shared caches must not keep them.
    response.headers.setdefault("Cache-Control", "no-store")
    response.vary.add("Authorization")
    response.vary.add("Cookie")
    return response
