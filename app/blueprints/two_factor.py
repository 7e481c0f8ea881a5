"""Two-factor sign-in: the second step of a login (/auth/two-factor) and its settings on the
account page (/account/two-factor): enrolment by QR code, recovery codes, disabling."""

from __future__ import annotations

import segno
from markupsafe import Markup
from quart import (
    Blueprint,
    Quart,
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)

from app.blueprints.guards import (
    account_settings,
    current_account,
    logged_in_user,
    login_required,
    request_origin,
    safe_next,
)
from app.blueprints.sign_in import (
    HeldLogin,
    drop_held_login,
    finish_login,
    held_login,
    hold_login,
)
from app.db import get_session
from app.errors import Conflict, Invalid, TooManyRequests
from app.models import User
from app.services import two_factor
from app.services.two_factor import Enrolment, TwoFactorSettings

bp = Blueprint("two_factor", __name__)

Page = str | Response | tuple[str, int] | tuple[str, int, dict[str, str]]


def settings() -> TwoFactorSettings:
    return current_app.extensions["two_factor"]


async def sign_in_or_hold(user: User, *, remember: bool, next_page: str, method: str) -> Response:
    """End a first-factor sign-in (a password, a reset link): logged in at once when the
    account has no second factor, else held until it is given on /auth/two-factor."""
    if await two_factor.second_factors(get_session(), user):
        hold_login(user, remember=remember, next_page=next_page, method=method)
        return redirect(url_for("two_factor.second_step"))
    await finish_login(user, remember=remember, method=method)
    return redirect(next_page)


# --- The second step of a login ---------------------------------------------------------------


async def _held_account() -> tuple[HeldLogin, User] | None:
    held = held_login()
    if held is None:
        return None
    user = await two_factor.account_for_second_step(get_session(), held.user_id)
    return (held, user) if user is not None else None


async def _login_again() -> Response:
    drop_held_login()
    await flash("Log in first: the code is asked for after your password, within five minutes.")
    return redirect(url_for("auth.login"))


async def _second_step_page(
    user: User, method: str, error: str | None = None, status: int = 200
) -> tuple[str, int]:
    factors = await two_factor.second_factors(get_session(), user)
    page = await render_template(
        "auth/two_factor.html", method=method, error=error, factors=factors
    )
    return page, status


@bp.route("/auth/two-factor", methods=["GET", "POST"])
async def second_step() -> Page:
    return await _second_step("totp")


@bp.route("/auth/two-factor/recovery", methods=["GET", "POST"])
async def recovery_step() -> Page:
    return await _second_step("recovery_code")


async def _second_step(method: str) -> Page:
    if current_account() is not None:
        return redirect(url_for("main.index"))
    found = await _held_account()
    if found is None:
        return await _login_again()
    held, user = found
    if request.method == "GET":
        return await _second_step_page(user, method)
    code = (await request.form).get("code", "")
    left = None
    try:
        if method == "totp":
            await two_factor.verify_code(
                get_session(), settings(), user, code, origin=request_origin()
            )
        else:
            left = await two_factor.use_recovery_code(
                get_session(), settings(), user, code, origin=request_origin()
            )
    except TooManyRequests as refusal:
        return _throttled(refusal, await _second_step_page(user, method, refusal.message))
    except Invalid as refusal:
        return await _second_step_page(user, method, refusal.message, 400)
    await finish_login(user, remember=held.remember, method=method)
    if left is not None:
        await flash(
            f"You used a recovery code; {left} left. Make new ones on your account page "
            "if you are running out."
        )
    return redirect(safe_next(held.next_page))


# --- Settings on the account page -------------------------------------------------------------


def qr_code_svg(enrolment: Enrolment) -> Markup:
    """The provisioning URI as an inline SVG QR code (made by segno: paths only, no script)."""
    svg = segno.make(enrolment.provisioning_uri, error="m").svg_inline(
        scale=5, dark="#000", light="#fff", title="QR code for your authenticator app"
    )
    return Markup(svg)  # noqa: S704 (segno's own SVG; the URI is encoded as modules, not text)


async def _manage_page(
    errors: dict[str, dict[str, str]] | None = None, status: int = 200
) -> tuple[str, int]:
    user = logged_in_user()
    page = await render_template(
        "account/two_factor.html",
        state=await two_factor.status(get_session(), user.id),
        errors=errors or {},
    )
    return page, status


async def _enrol_page(
    enrolment: Enrolment, error: str | None = None, status: int = 200
) -> tuple[str, int]:
    page = await render_template(
        "account/two_factor_enrol.html",
        enrolment=enrolment,
        qr_code=qr_code_svg(enrolment),
        error=error,
    )
    return page, status


async def _codes_page(codes: list[str], status: int = 201) -> tuple[str, int]:
    # Rendered, never redirected: the codes must not travel through the flash cookie.
    page = await render_template(
        "account/recovery_codes.html", codes=codes, download_text="\n".join(codes) + "\n"
    )
    return page, status


def _throttled(refusal: TooManyRequests, page: tuple[str, int]) -> Page:
    """The page with the refusal's message, as a 429 that says when to try again."""
    return page[0], 429, {"Retry-After": str(refusal.retry_after)}


@bp.get("/account/two-factor")
@login_required
async def manage() -> Page:
    return await _manage_page()


@bp.post("/account/two-factor/enable")
@login_required
async def enable() -> Page:
    try:
        enrolment = await two_factor.begin_enrolment(get_session(), settings(), logged_in_user())
    except Conflict as refusal:
        await flash(refusal.message)
        return redirect(url_for("two_factor.manage"))
    return await _enrol_page(enrolment)


@bp.post("/account/two-factor/confirm")
@login_required
async def confirm() -> Page:
    user = logged_in_user()
    code = (await request.form).get("code", "")
    try:
        codes = await two_factor.confirm_enrolment(
            get_session(), settings(), user, code, origin=request_origin()
        )
    except Conflict as refusal:
        await flash(refusal.message)
        return redirect(url_for("two_factor.manage"))
    except (Invalid, TooManyRequests) as refusal:
        enrolment = await two_factor.pending_enrolment(get_session(), settings(), user)
        if enrolment is None:
            await flash(refusal.message)
            return redirect(url_for("two_factor.manage"))
        page = await _enrol_page(enrolment, refusal.message, 400)
        return _throttled(refusal, page) if isinstance(refusal, TooManyRequests) else page
    return await _codes_page(codes)


@bp.post("/account/two-factor/recovery-codes")
@login_required
async def regenerate() -> Page:
    code = (await request.form).get("code", "")
    try:
        codes = await two_factor.regenerate_recovery_codes(
            get_session(), settings(), logged_in_user(), code, origin=request_origin()
        )
    except TooManyRequests as refusal:
        return _throttled(refusal, await _manage_page({"regenerate": {"code": refusal.message}}))
    except Invalid as refusal:
        return await _manage_page({"regenerate": refusal.field_errors}, 400)
    return await _codes_page(codes)


@bp.post("/account/two-factor/disable")
@login_required
async def disable() -> Page:
    form = await request.form
    try:
        await two_factor.disable(
            get_session(),
            settings(),
            account_settings(),
            logged_in_user(),
            password=form.get("password", ""),
            code=form.get("code", ""),
            origin=request_origin(),
        )
    except TooManyRequests as refusal:
        return _throttled(refusal, await _manage_page({"disable": {"code": refusal.message}}))
    except Invalid as refusal:
        return await _manage_page({"disable": refusal.field_errors}, 400)
    await flash("Two-factor sign-in is off: your password alone logs you in.")
    return redirect(url_for("account.index"))


def init_app(app: Quart) -> None:
    app.extensions["two_factor"] = TwoFactorSettings.from_config(app.config)
    app.register_blueprint(bp)
