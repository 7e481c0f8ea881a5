"""Passkeys: adding, renaming and removing them on the account page, and signing in with one
(instead of a password, or as the second step after it). The ceremonies are JSON calls made by
static/js/passkeys.js, CSRF-checked by their X-CSRF-Token header like every other POST."""

from __future__ import annotations

import base64
from typing import Any

from quart import (
    Blueprint,
    Response,
    current_app,
    flash,
    jsonify,
    redirect,
    request,
    session,
    url_for,
)

from app.blueprints.guards import (
    logged_in_user,
    login_required,
    rate_limited,
    request_origin,
    safe_next,
)
from app.blueprints.sign_in import drop_held_login, finish_login, held_login
from app.db import get_session
from app.errors import Invalid
from app.services import passkeys
from app.services.passkeys import Purpose

bp = Blueprint("passkeys", __name__)


def passkeys_available() -> bool:
    """Whether this server can offer passkeys (it has a domain name to be their relying party)."""
    return bool(current_app.config["WEBAUTHN_RP_ID"])


@bp.record_once
def _add_template_globals(state: Any) -> None:
    # A global, not context: the login page's and the two-factor page's partials ask for it.
    state.app.jinja_env.globals["passkeys_available"] = passkeys_available


# The session names the ceremonies under way; the challenge rows in the database make them
# single-use (an old copy of the signed cookie names challenges that are gone). A few per
# purpose: the login page's autofill ceremony waits while the button may start another.
_CHALLENGES = "webauthn_challenges"
_PENDING_PER_PURPOSE = 3
_EXPIRED = "This request has expired. Reload the page and try again."


def _relying_party() -> passkeys.RelyingParty:
    return passkeys.RelyingParty.from_config(current_app.config)


def _begin(purpose: Purpose, ceremony: passkeys.Ceremony) -> Response:
    pending = dict(session.get(_CHALLENGES) or {})
    earlier = [c for c in pending.get(purpose.value) or [] if isinstance(c, str)]
    encoded = base64.urlsafe_b64encode(ceremony.challenge).rstrip(b"=").decode()
    pending[purpose.value] = [*earlier, encoded][-_PENDING_PER_PURPOSE:]
    session[_CHALLENGES] = pending
    return current_app.response_class(ceremony.options_json, mimetype="application/json")


def _take(purpose: Purpose, answer: dict[str, Any]) -> bytes:
    """The challenge that `answer` signed, if this session's ceremonies of `purpose` include
    it; the session forgets it now."""
    challenge = passkeys.signed_challenge(answer)
    pending = dict(session.get(_CHALLENGES) or {})
    waiting = [c for c in pending.get(purpose.value) or [] if isinstance(c, str)]
    encoded = base64.urlsafe_b64encode(challenge).rstrip(b"=").decode() if challenge else None
    if encoded is None or encoded not in waiting:
        raise Invalid(_EXPIRED)
    waiting.remove(encoded)
    pending[purpose.value] = waiting
    session[_CHALLENGES] = pending
    return challenge


async def _body() -> dict[str, Any]:
    body = await request.get_json(silent=True)
    if not isinstance(body, dict):
        raise Invalid("Send a JSON object.")
    return body


def _name(body: dict[str, Any]) -> str:
    name = body.get("name")
    return name if isinstance(name, str) else ""


def _answer(body: dict[str, Any]) -> dict[str, Any]:
    answer = body.get("credential")
    if not isinstance(answer, dict):
        raise Invalid("The browser sent no passkey.")
    return answer


# --- The account page's passkeys ------------------------------------------------------------------


@bp.post("/account/passkeys/options")
@login_required
async def registration_options() -> Response:
    body = await _body()
    ceremony = await passkeys.registration_options(
        get_session(), _relying_party(), logged_in_user(), name=_name(body)
    )
    return _begin(Purpose.REGISTER, ceremony)


@bp.post("/account/passkeys")
@login_required
async def add() -> tuple[Response, int]:
    body = await _body()
    answer = _answer(body)
    passkey = await passkeys.add_passkey(
        get_session(),
        _relying_party(),
        logged_in_user(),
        name=_name(body),
        challenge=_take(Purpose.REGISTER, answer),
        answer=answer,
        origin=request_origin(),
    )
    await flash(f"The passkey “{passkey.name}” is added: you can sign in with it.")
    return jsonify(id=passkey.id, name=passkey.name, redirect=url_for("account.index")), 201


@bp.post("/account/passkeys/<int(max=2147483647):passkey_id>/rename")
@login_required
async def rename(passkey_id: int) -> Response:
    name = (await request.form).get("name", "")
    try:
        await passkeys.rename_passkey(get_session(), logged_in_user(), passkey_id, name)
    except Invalid as refusal:
        await flash(refusal.message)
    else:
        await flash("The passkey is renamed.")
    return redirect(url_for("account.index") + "#passkeys")


@bp.post("/account/passkeys/<int(max=2147483647):passkey_id>/remove")
@login_required
async def remove(passkey_id: int) -> Response:
    await passkeys.remove_passkey(
        get_session(), logged_in_user(), passkey_id, origin=request_origin()
    )
    await flash("The passkey is removed: it no longer signs you in.")
    return redirect(url_for("account.index") + "#passkeys")


# --- Signing in -------------------------------------------------------------------------------
# Limited per client address, high enough for an office behind one: each answer needs options
# (a challenge) first, so guessing is not the risk; filling the challenge table is.


@bp.post("/auth/passkey/options")
@rate_limited("passkey-sign-in-options", limit=120, per_seconds=300)
async def sign_in_options() -> Response:
    return _begin(Purpose.SIGN_IN, await passkeys.sign_in_options(get_session(), _relying_party()))


@bp.post("/auth/passkey/verify")
@rate_limited("passkey-sign-in", limit=120, per_seconds=300)
async def sign_in() -> Response:
    body = await _body()
    answer = _answer(body)
    user = await passkeys.sign_in(
        get_session(),
        _relying_party(),
        challenge=_take(Purpose.SIGN_IN, answer),
        answer=answer,
        origin=request_origin(),
    )
    await finish_login(user, remember=body.get("remember") is True, method="passkey")
    next_page = body.get("next")
    return jsonify(redirect=safe_next(next_page if isinstance(next_page, str) else None))


@bp.post("/auth/passkey/second-factor/options")
@rate_limited("passkey-second-factor-options", limit=60, per_seconds=300)
async def second_factor_options() -> Response:
    held = held_login()
    if held is None:
        raise Invalid("Your login has expired. Log in with your password again.")
    ceremony = await passkeys.second_factor_options(get_session(), _relying_party(), held.user_id)
    return _begin(Purpose.SECOND_FACTOR, ceremony)


@bp.post("/auth/passkey/second-factor/verify")
@rate_limited("passkey-second-factor", limit=60, per_seconds=300)
async def second_factor() -> Response:
    held = held_login()
    if held is None:
        drop_held_login()
        raise Invalid("Your login has expired. Log in with your password again.")
    answer = _answer(await _body())
    user = await passkeys.verify_second_factor(
        get_session(),
        _relying_party(),
        held.user_id,
        challenge=_take(Purpose.SECOND_FACTOR, answer),
        answer=answer,
        origin=request_origin(),
    )
    await finish_login(user, remember=held.remember, method=f"{held.method}+passkey")
    return jsonify(redirect=safe_next(held.next_page))
