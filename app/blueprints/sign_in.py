"""How every way of signing in ends: a login session, its cookie and its audit row; or, when the
account has a second factor, a login held until that factor is given.

Password, second factor, passkey and single sign-on routes all finish here, so that a sign-in
is recorded the same way whichever door it came through."""

from __future__ import annotations

import time
from dataclasses import dataclass

from quart import session

from app.blueprints.guards import account_settings, begin_login, request_origin
from app.db import get_session
from app.models import User
from app.services import login_sessions

# How long a password stays good for the second step: long enough to find the phone.
HELD_LOGIN_SECONDS = 300
_HELD = "held_login"


async def finish_login(user: User, *, remember: bool, method: str) -> None:
    """Start a login session for `user` and set its cookie; the audit log records `method`."""
    drop_held_login()
    secret = await login_sessions.start_session(
        get_session(),
        account_settings(),
        user,
        remember=remember,
        method=method,
        origin=request_origin(),
    )
    begin_login(secret, remember=remember)


@dataclass(frozen=True)
class HeldLogin:
    """A first factor given, the second still owed."""

    user_id: int
    remember: bool
    next_page: str
    method: str


def hold_login(user: User, *, remember: bool, next_page: str, method: str = "password") -> None:
    """Remember in the signed session cookie that `user` gave their first factor just now."""
    session[_HELD] = {
        "user_id": user.id,
        "remember": remember,
        "next": next_page,
        "method": method,
        "at": int(time.time()),
    }


def held_login() -> HeldLogin | None:
    """The login waiting for its second factor, or None when there is none or it is too old."""
    held = session.get(_HELD)
    if not isinstance(held, dict) or time.time() - held.get("at", 0) > HELD_LOGIN_SECONDS:
        return None
    return HeldLogin(held["user_id"], bool(held["remember"]), held["next"], held["method"])


def drop_held_login() -> None:
    session.pop(_HELD, None)
