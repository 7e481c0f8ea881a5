"""The account page: name, password, email address, two-factor, the sessions logged in, API
tokens, passkeys (added, renamed and removed by the passkeys blueprint)."""

from __future__ import annotations

from quart import Blueprint, Response, flash, redirect, render_template, request, url_for

from app.blueprints.forms import form_int
from app.blueprints.guards import (
    account_settings,
    current_account,
    current_auth_session,
    login_required,
    request_origin,
)
from app.db import get_session
from app.errors import Invalid
from app.models import AuthSession, User
from app.services import accounts, api_tokens, login_sessions, passkeys, passwords, two_factor

bp = Blueprint("account", __name__, url_prefix="/account")


def _me() -> tuple[User, AuthSession]:
    user, auth_session = current_account(), current_auth_session()
    assert user is not None and auth_session is not None  # login_required ran
    return user, auth_session


async def _page(
    refused_form: str | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
    *,
    new_token: api_tokens.NewToken | None = None,
    form: dict[str, str] | None = None,
) -> tuple[str, int]:
    """The account page; `errors` belong to `refused_form` (name, email, password or token).
    `new_token` is shown once, right after it was made."""
    user, auth_session = _me()
    sessions = await login_sessions.active_sessions(get_session(), account_settings(), user.id)
    page = await render_template(
        "account/index.html",
        user=user,
        sessions=sessions,
        this_session_id=auth_session.id,
        errors={refused_form: errors or {}} if refused_form else {},
        tokens=await api_tokens.active_tokens(get_session(), user.id),
        two_factor=await two_factor.status(get_session(), user.id),
        new_token=new_token,
        form=form or {},
        passkeys=await passkeys.list_passkeys(get_session(), user.id),
    )
    return page, status


@bp.get("/")
@login_required
async def index() -> tuple[str, int]:
    return await _page()


@bp.post("/name")
@login_required
async def change_name() -> Response | tuple[str, int]:
    user, _ = _me()
    form = await request.form
    try:
        await accounts.change_display_name(get_session(), user.id, form.get("display_name", ""))
    except Invalid as refusal:
        return await _page("name", refusal.field_errors, 400)
    await flash("Your name is saved.")
    return redirect(url_for("account.index"))


@bp.post("/password")
@login_required
async def change_password() -> Response | tuple[str, int]:
    user, auth_session = _me()
    form = await request.form
    try:
        await passwords.change_password(
            get_session(),
            account_settings(),
            user.id,
            current_password=form.get("current_password", ""),
            new_password=form.get("new_password", ""),
            keep_session=auth_session.id,
            origin=request_origin(),
        )
    except Invalid as refusal:
        return await _page("password", refusal.field_errors, 400)
    await flash("Your password is changed; your other sessions are logged out.")
    return redirect(url_for("account.index"))


@bp.post("/email")
@login_required
async def change_email() -> Response | tuple[str, int]:
    user, _ = _me()
    form = await request.form
    try:
        await accounts.request_email_change(
            get_session(),
            account_settings(),
            user.id,
            new_email=form.get("email", ""),
            current_password=form.get("current_password", ""),
            origin=request_origin(),
        )
    except Invalid as refusal:
        return await _page("email", refusal.field_errors, 400)
    await flash("We sent a link to your new address. Your address changes when you open it.")
    return redirect(url_for("account.index"))


@bp.post("/notifications")
@login_required
async def notifications() -> Response:
    user, _ = _me()
    enabled = (await request.form).get("notify_by_email") == "on"
    await accounts.set_mail_notifications(get_session(), user.id, enabled)
    await flash("Mail about watched issues is " + ("on." if enabled else "off."))
    return redirect(url_for("account.index"))


@bp.post("/sessions/end-others")
@login_required
async def end_other_sessions() -> Response:
    user, auth_session = _me()
    ended = await login_sessions.end_other_sessions(
        get_session(), user.id, auth_session.id, origin=request_origin()
    )
    await flash(f"Logged out {ended} other session{'s' if ended != 1 else ''}.")
    return redirect(url_for("account.index"))


@bp.post("/tokens")
@login_required
async def create_token() -> tuple[str, int]:
    user, _ = _me()
    form = await request.form
    try:
        made = await api_tokens.create_token(
            get_session(),
            user,
            name=form.get("name", ""),
            scope=form.get("scope", ""),
            expires_in_days=form_int(form, "expires"),
            origin=request_origin(),
        )
    except Invalid as refusal:
        return await _page("token", refusal.field_errors, 400, form=dict(form))
    # Rendered, not redirected: the secret must not travel through the flash cookie.
    return await _page(new_token=made, status=201)


@bp.post("/tokens/<int(max=2147483647):token_id>/revoke")
@login_required
async def revoke_token(token_id: int) -> Response:
    user, _ = _me()
    await api_tokens.revoke_token(get_session(), user, token_id, origin=request_origin())
    await flash("The token is revoked: it no longer works.")
    return redirect(url_for("account.index"))
