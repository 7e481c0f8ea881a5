"""What every request passes: who is logged in, CSRF and cross-site checks, rate limits,
safe redirects, and the security headers on every answer."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar
from urllib.parse import urlsplit

from quart import Quart, Response, current_app, g, redirect, request, session, url_for
from quart_auth import AuthUser, QuartAuth, current_user, login_user, logout_user
from werkzeug.exceptions import Forbidden as HTTPForbidden
from werkzeug.exceptions import NotFound as HTTPNotFound
from werkzeug.exceptions import Unauthorized

from app.db import get_session
from app.errors import TooManyRequests
from app.models import AuthSession, User
from app.security import new_token, same_secret
from app.services import accounts, audit, login_sessions, rate_limits

P = ParamSpec("P")
T = TypeVar("T")

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


def account_settings() -> accounts.AccountSettings:
    return current_app.extensions["account_settings"]


def current_account() -> User | None:
    """The logged-in user, detached from the session (valid for the whole request)."""
    return g.get("user")


def current_auth_session() -> AuthSession | None:
    return g.get("auth_session")


# --- Who is logged in -------------------------------------------------------------------------


async def _load_logged_in_user() -> None:
    g.user, g.auth_session = None, None
    if request.endpoint == "static":
        return
    secret = current_user.auth_id
    if not secret:
        return
    database_session = get_session()
    found = await login_sessions.resume_session(database_session, account_settings(), secret)
    if found is None:
        logout_user()  # a revoked or expired session: drop the cookie too
        return
    auth_session, user = found
    # Detached: a refused use case's rollback later in the request must not expire them.
    database_session.expunge(auth_session)
    database_session.expunge(user)
    g.user, g.auth_session = user, auth_session


def begin_login(secret: str, *, remember: bool) -> None:
    """Put a new session's secret in the login cookie, and a new CSRF token beside it."""
    login_user(AuthUser(secret), remember=remember)
    session["csrf"] = new_token()


def end_login() -> None:
    logout_user()
    session["csrf"] = new_token()


def login_required(view: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T | Response]]:
    """Pages redirect to the login form (and come back after); other requests get a 401."""

    @functools.wraps(view)
    async def guarded(*args: P.args, **kwargs: P.kwargs) -> T | Response:
        if current_account() is None:
            if request.method == "GET" and not request.path.startswith("/api/"):
                return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
            raise Unauthorized("Log in first.")
        return await view(*args, **kwargs)

    return guarded


def admin_required(view: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T | Response]]:
    """Site admins only. Everyone else, logged in or not, gets the 404 of a page that does not
    exist: the console does not say it is there."""

    @functools.wraps(view)
    async def guarded(*args: P.args, **kwargs: P.kwargs) -> T | Response:
        user = current_account()
        if user is None or not user.is_admin:
            raise HTTPNotFound()
        return await view(*args, **kwargs)

    return guarded


# --- Cross-site request forgery ---------------------------------------------------------------


def csrf_token() -> str:
    """The token every form of this session carries (made on first use)."""
    if "csrf" not in session:
        session["csrf"] = new_token()
    return session["csrf"]


def _allowed_origins() -> set[str]:
    base = urlsplit(current_app.config["BASE_URL"])
    return {f"{base.scheme}://{base.netloc}", request.host_url.rstrip("/")}


def _csrf_exempt() -> bool:
    """API calls that bring a token (no ambient authority to forge) or no login at all (the API
    refuses their changes with 401) need no CSRF token; a logged-in browser's API calls do."""
    return request.path.startswith("/api/") and (
        "Authorization" in request.headers or current_account() is None
    )


async def _refuse_cross_site_requests() -> None:
    """Unsafe requests must come from our own pages: not cross-site by the browser's word
    (Sec-Fetch-Site, Origin), and carrying this session's CSRF token."""
    if request.method not in UNSAFE_METHODS or _csrf_exempt():
        return
    if request.headers.get("Sec-Fetch-Site") == "cross-site":
        raise HTTPForbidden("Cross-site requests are refused.")
    origin = request.headers.get("Origin")
    if origin is not None and origin not in _allowed_origins():
        raise HTTPForbidden("Requests from other sites are refused.")
    sent = request.headers.get(CSRF_HEADER) or (await request.form).get(CSRF_FIELD, "")
    expected = session.get("csrf")
    if not expected or not sent or not same_secret(sent, expected):
        raise HTTPForbidden("This form has expired. Go back, reload the page and try again.")


# --- Rate limits and client addresses ---------------------------------------------------------


def client_address() -> str:
    """The client's address: the peer's, or the one our trusted proxies forwarded."""
    trusted = current_app.config["TRUST_PROXY_COUNT"]
    if trusted > 0:
        forwarded = [
            part.strip()
            for part in request.headers.get("X-Forwarded-For", "").split(",")
            if part.strip()
        ]
        if len(forwarded) >= trusted:
            return forwarded[-trusted]
    return request.remote_addr or "unknown"


def request_origin() -> audit.Origin:
    """This request's address and browser, as the audit log records them."""
    return audit.Origin(client_address(), request.headers.get("User-Agent", ""))


def rate_limited(
    action: str, *, limit: int, per_seconds: int
) -> Callable[[Callable[P, Awaitable[T]]], Callable[P, Awaitable[T]]]:
    """Limit the unsafe requests of one client to `limit` per `per_seconds` for `action`."""

    def decorate(view: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
        @functools.wraps(view)
        async def guarded(*args: P.args, **kwargs: P.kwargs) -> T:
            if request.method in UNSAFE_METHODS and current_app.config["RATE_LIMIT_ENABLED"]:
                retry_after = await rate_limits.hit(
                    get_session(),
                    f"{action}:{client_address()}",
                    limit=limit,
                    window_seconds=per_seconds,
                )
                if retry_after is not None:
                    raise TooManyRequests(retry_after)
            return await view(*args, **kwargs)

        return guarded

    return decorate


def safe_next(target: str | None, default: str = "/") -> str:
    """`target` if it is a path on this site, else `default`: never an open redirect."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return default
    # Browsers drop tabs and newlines and read a backslash as a slash: /\t/x and /\x are //x.
    if any(character <= " " or character in "\\\x7f" for character in target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


# --- Headers ----------------------------------------------------------------------------------


async def _set_security_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    # Links with secrets in them (reset, validation) must not leak to other sites.
    headers.setdefault("Referrer-Policy", "same-origin")
    if current_account() is not None or request.path.startswith("/auth/"):
        headers["Cache-Control"] = "no-store"
    return response


def logged_in_user() -> User:
    """The logged-in account of a request that login_required let through."""
    user = current_account()
    assert user is not None  # login_required ran
    return user


def wants_json() -> bool:
    """Whether the client asks for JSON: every API call, and pages' scripts that say so."""
    if request.path.startswith("/api/"):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def init_app(app: Quart) -> None:
    auth = QuartAuth(app)
    # Its template context (`current_user`) is a sync function, which Quart runs in a thread on
    # every render; the templates use current_account() instead, so it only cost time.
    processors = app.template_context_processors[None]
    processors[:] = [p for p in processors if p != auth._template_context]
    app.before_request(_load_logged_in_user)
    app.before_request(_refuse_cross_site_requests)
    app.after_request(_set_security_headers)

    # Globals, not context: imported macros (the form fields) see globals only.
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.jinja_env.globals["current_account"] = current_account
