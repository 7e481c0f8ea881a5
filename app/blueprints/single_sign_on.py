"""Single sign-on through the OpenID provider (decision 0025): the button's redirect to the
provider and the callback that signs the person in, or shows why not."""

from __future__ import annotations

from quart import (
    Blueprint,
    Quart,
    Response,
    current_app,
    redirect,
    render_template,
    request,
    session,
)

from app.blueprints.guards import account_settings, request_origin, safe_next
from app.blueprints.sign_in import finish_login
from app.db import get_session
from app.security import same_secret
from app.services import audit, single_sign_on, sso_accounts
from app.services.single_sign_on import OpenIDProvider, PendingLogin, SsoRefused, SsoSettings

bp = Blueprint("single_sign_on", __name__, url_prefix="/auth/oidc")

# The pending login in the signed session cookie: popped at the callback, so it serves once.
_PENDING = "oidc_login"


def sso_settings() -> SsoSettings | None:
    return current_app.extensions["sso_settings"]


def _provider() -> OpenIDProvider:
    return current_app.extensions["sso_provider"]  # the routes exist only with a provider


def password_refusal(email: str) -> str | None:
    """Why a password login, sign-up or reset is refused for this address (it must use the
    provider), or None."""
    return single_sign_on.password_refusal(sso_settings(), email)


async def _refused(refusal: SsoRefused, next_page: str = "/", email: str = "") -> Response:
    await audit.record_refusal(
        get_session(),
        audit.AuditAction.SSO_FAILED,
        actor=None,
        origin=request_origin(),
        subject_email=email,
        reason=refusal.reason,
    )
    settings = sso_settings()
    page = await render_template(
        "single_sign_on/refused.html",
        message=refusal.message,
        provider=settings.provider_name if settings else "",
        next=next_page,
    )
    status = 502 if refusal.reason == "provider_unreachable" else 400
    return Response(page, status=status, content_type="text/html; charset=utf-8")


@bp.get("/login")
async def login() -> Response:
    provider = _provider()
    next_page = safe_next(request.args.get("next"))
    try:
        url, pending = await provider.begin(next_page)
    except SsoRefused as refusal:
        return await _refused(refusal, next_page)
    # A second start replaces the first: only the newest sign-in of a browser can finish.
    session[_PENDING] = pending.as_dict()
    return redirect(url)


@bp.get("/callback")
async def callback() -> Response:
    provider = _provider()
    pending = PendingLogin.from_dict(session.get(_PENDING))
    if pending is not None and same_secret(request.args.get("state", ""), pending.state):
        # Used up, whatever follows. A callback for another state (forged, or an older tab)
        # leaves the browser's pending sign-in alone, so it cannot be cancelled from outside.
        session.pop(_PENDING)
    next_page = safe_next(pending.next_page if pending else None)
    identity = None
    try:
        identity = await provider.finish(pending, request.args)
        user = await sso_accounts.account_for_identity(
            get_session(),
            account_settings(),
            provider.settings,
            identity,
            origin=request_origin(),
        )
    except SsoRefused as refusal:
        return await _refused(refusal, next_page, identity.email if identity else "")
    # The provider did the authentication, second factor included: see decision 0025.
    await finish_login(user, remember=False, method="sso")
    return redirect(next_page)


def init_app(app: Quart) -> None:
    """When OIDC_ISSUER is set: the routes, and the provider (closed with the worker). Without
    it the routes do not exist, and the pages show no button."""
    settings = SsoSettings.from_config(app.config)
    app.extensions["sso_settings"] = settings
    app.jinja_env.globals["sso_provider_name"] = lambda: (
        settings.provider_name if settings else None
    )
    if settings is None:
        return
    app.register_blueprint(bp)
    provider = OpenIDProvider(settings)
    app.extensions["sso_provider"] = provider
    app.after_serving(provider.close)
