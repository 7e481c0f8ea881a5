"""Sign-up, address validation, login, logout and password reset."""

from __future__ import annotations

from urllib.parse import urlsplit

from quart import Blueprint, Response, flash, redirect, render_template, request, url_for

from app.blueprints.guards import (
    account_settings,
    current_account,
    current_auth_session,
    end_login,
    login_required,
    rate_limited,
    request_origin,
    safe_next,
)
from app.blueprints.sign_in import finish_login
from app.blueprints.single_sign_on import password_refusal
from app.blueprints.two_factor import sign_in_or_hold
from app.db import get_session
from app.errors import Invalid, TooManyRequests
from app.services import accounts, audit, login_sessions, passwords, registration

bp = Blueprint("auth", __name__, url_prefix="/auth")

Page = str | Response | tuple[str, int] | tuple[str, int, dict[str, str]]


@bp.route("/signup", methods=["GET", "POST"])
@rate_limited("signup", limit=10, per_seconds=600)
async def signup() -> Page:
    settings = account_settings()
    if request.method == "GET":
        return await render_template("auth/signup.html", form={}, errors={}, settings=settings)
    form = await request.form
    if refusal := password_refusal(form.get("email", "")):
        page = await render_template(
            "auth/signup.html", form=form, errors={"email": refusal}, settings=settings
        )
        return page, 400
    try:
        user = await registration.sign_up(
            get_session(),
            settings,
            email=form.get("email", ""),
            display_name=form.get("display_name", ""),
            password=form.get("password", ""),
            origin=request_origin(),
        )
    except Invalid as refusal:
        page = await render_template(
            "auth/signup.html", form=form, errors=refusal.field_errors, settings=settings
        )
        return page, 400
    await finish_login(user, remember=False, method="signup")
    await flash(f"Welcome! We sent a link to {user.email}: open it to confirm your address.")
    return redirect(url_for("main.index"))


@bp.route("/login", methods=["GET", "POST"])
async def login() -> Page:
    # Limited inside log_in: failures per account, per (address, account) and per address.
    next_page = safe_next(request.args.get("next"))
    if request.method == "GET":
        if current_account() is not None:
            return redirect(next_page)
        return await render_template("auth/login.html", form={}, error=None, next=next_page)
    form = await request.form
    next_page = safe_next(form.get("next"))
    if refusal := password_refusal(form.get("email", "")):
        # People of an SSO-only domain have no password here, whatever the form says.
        await audit.record_refusal(
            get_session(),
            audit.AuditAction.LOGIN_FAILED,
            actor=None,
            origin=request_origin(),
            subject_email=form.get("email", "").strip().lower(),
            reason="sso_only",
        )
        page = await render_template("auth/login.html", form=form, error=refusal, next=next_page)
        return page, 403
    try:
        user = await login_sessions.log_in(
            get_session(),
            account_settings(),
            email=form.get("email", ""),
            password=form.get("password", ""),
            origin=request_origin(),
        )
    except (Invalid, TooManyRequests) as refusal:
        page = await render_template(
            "auth/login.html", form=form, error=refusal.message, next=next_page
        )
        headers = {"Retry-After": str(refusal.retry_after)} if refusal.retry_after else {}
        return page, refusal.status, headers
    # With a second factor on, the password only opens the second step (/auth/two-factor).
    return await sign_in_or_hold(
        user, remember=form.get("remember") == "on", next_page=next_page, method="password"
    )


@bp.post("/logout")
async def logout() -> Response:
    auth_session = current_auth_session()
    if auth_session is not None:
        await login_sessions.end_session(
            get_session(), auth_session.id, actor=current_account(), origin=request_origin()
        )
    end_login()
    await flash("You are logged out.")
    return redirect(url_for("main.index"))


@bp.get("/verify/<signed>")
async def verify(signed: str) -> Page:
    try:
        user = await registration.verify_email(
            get_session(), account_settings(), signed, origin=request_origin()
        )
    except Invalid as refusal:
        return await render_template("auth/link_refused.html", message=refusal.message), 400
    await flash("Your address is confirmed. Welcome to Issues!")
    viewer = current_account()
    if viewer is not None and viewer.id == user.id:
        return redirect(url_for("main.index"))
    return redirect(url_for("auth.login"))


@bp.post("/verify/resend")
@login_required
@rate_limited("resend-verification", limit=3, per_seconds=600)
async def resend_verification() -> Response:
    user = current_account()
    assert user is not None
    await registration.resend_verification(get_session(), account_settings(), user.id)
    await flash(f"We sent a new link to {user.email}.")
    return redirect(safe_next(request.referrer and _path_of(request.referrer)))


def _path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


@bp.get("/confirm-email/<signed>")
async def confirm_email(signed: str) -> Page:
    try:
        await accounts.confirm_email_change(
            get_session(), account_settings(), signed, origin=request_origin()
        )
    except Invalid as refusal:
        return await render_template("auth/link_refused.html", message=refusal.message), 400
    await flash("Your new address is confirmed and is now the one you log in with.")
    return redirect(url_for("account.index") if current_account() else url_for("auth.login"))


@bp.route("/forgot", methods=["GET", "POST"])
@rate_limited("reset", limit=5, per_seconds=900)
async def forgot() -> Page:
    if request.method == "GET":
        return await render_template("auth/forgot.html", sent_to=None)
    email = (await request.form).get("email", "")
    if refusal := password_refusal(email):
        return await render_template("auth/forgot.html", sent_to=None, error=refusal), 403
    await passwords.request_password_reset(
        get_session(), account_settings(), email, origin=request_origin()
    )
    # The same answer whether or not an account has this address.
    return await render_template("auth/forgot.html", sent_to=email.strip())


@bp.route("/reset/<signed>", methods=["GET", "POST"])
@rate_limited("reset", limit=5, per_seconds=900)
async def reset(signed: str) -> Page:
    if request.method == "GET":
        try:
            await passwords.check_reset_link(get_session(), account_settings(), signed)
        except Invalid as refusal:
            return await render_template("auth/link_refused.html", message=refusal.message), 400
        return await render_template("auth/reset.html", error=None)
    form = await request.form
    try:
        user = await passwords.reset_password(
            get_session(),
            account_settings(),
            signed,
            form.get("password", ""),
            origin=request_origin(),
        )
    except Invalid as refusal:
        if refusal.field != "password":
            return await render_template("auth/link_refused.html", message=refusal.message), 400
        return await render_template("auth/reset.html", error=refusal.message), 400
    end_login()
    await flash("Your password is changed, and every other session is logged out.")
    # A reset proves the mailbox, not the second factor: two-factor stays on and is asked for.
    return await sign_in_or_hold(
        user, remember=False, next_page=url_for("main.index"), method="password_reset"
    )
