"""The site admin console at /admin (decision 0022): a 404 to everyone but site admins.

Thin over services.admin: every POST is one use case with its audit row; a refusal is
flashed on the page the admin came from, and nothing is written."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

from quart import (
    Blueprint,
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)

from app.blueprints.guards import account_settings, admin_required, logged_in_user, request_origin
from app.db import get_session
from app.errors import NotFound, ServiceError
from app.services import admin, admin_projects, admin_queues
from app.web.checks import settings_problems

bp = Blueprint("admin", __name__, url_prefix="/admin")
# Ids past their columns' range are no such row (a 404), not a database error.
ID = "int(max=2147483647)"
BIG_ID = "int(max=9223372036854775807)"  # deliveries are numbered in a 64-bit column

T = TypeVar("T")


async def _done(
    change: Awaitable[T], back: str, success: str, *, missing: str | None = None
) -> Response:
    """Run an admin use case, flash what came of it, and go back to `back` (to `missing`
    when what it acts on does not exist)."""
    try:
        await change
    except NotFound as refusal:
        await flash(refusal.message)
        return redirect(missing or back, 303)
    except ServiceError as refusal:
        await flash(refusal.message)
    else:
        await flash(success)
    return redirect(back, 303)


def _query() -> tuple[str, int]:
    return request.args.get("q", "").strip(), admin.page_number(request.args.get("page"))


@bp.get("")  # /admin exactly: a slash redirect would tell outsiders it is there
@admin_required
async def home() -> str:
    return await render_template(
        "admin/home.html", counts=await admin.console_counts(get_session())
    )


# --- People ------------------------------------------------------------------------------------


@bp.get("/people")
@admin_required
async def people() -> str:
    query, number = _query()
    return await render_template(
        "admin/people.html", query=query, page=await admin.people_page(get_session(), query, number)
    )


@bp.get(f"/people/<{ID}:user_id>")
@admin_required
async def person(user_id: int) -> str:
    details = await admin.person_details(get_session(), account_settings(), user_id)
    return await render_template("admin/person.html", details=details)


async def _on_person(change: Awaitable[T], user_id: int, success: str) -> Response:
    back = url_for("admin.person", user_id=user_id)
    return await _done(change, back, success, missing=url_for("admin.people"))


@bp.post(f"/people/<{ID}:user_id>/deactivate")
@admin_required
async def deactivate(user_id: int) -> Response:
    change = admin.deactivate(get_session(), logged_in_user(), user_id, request_origin())
    return await _on_person(change, user_id, "Deactivated: their sessions and tokens are ended.")


@bp.post(f"/people/<{ID}:user_id>/reactivate")
@admin_required
async def reactivate(user_id: int) -> Response:
    change = admin.reactivate(get_session(), logged_in_user(), user_id, request_origin())
    return await _on_person(change, user_id, "Reactivated: they can log in again.")


@bp.post(f"/people/<{ID}:user_id>/admin")
@admin_required
async def set_admin(user_id: int) -> Response:
    make_admin = (await request.form).get("admin") == "1"
    change = admin.set_admin(get_session(), logged_in_user(), user_id, make_admin, request_origin())
    success = "They are a site admin now." if make_admin else "They are no longer a site admin."
    return await _on_person(change, user_id, success)


@bp.post(f"/people/<{ID}:user_id>/two-factor/reset")
@admin_required
async def reset_two_factor(user_id: int) -> Response:
    change = admin.reset_two_factor(get_session(), logged_in_user(), user_id, request_origin())
    return await _on_person(
        change, user_id, "Their second factor is removed: they sign in with a password."
    )


# --- Projects ----------------------------------------------------------------------------------


@bp.get("/projects")
@admin_required
async def projects() -> str:
    query, number = _query()
    return await render_template(
        "admin/projects.html",
        query=query,
        page=await admin_projects.projects_page(get_session(), query, number),
    )


@bp.get(f"/projects/<{ID}:project_id>")
@admin_required
async def project(project_id: int) -> str:
    row = await admin_projects.project_row(get_session(), project_id)
    return await render_template("admin/project.html", row=row)


@bp.post(f"/projects/<{ID}:project_id>/transfer")
@admin_required
async def transfer(project_id: int) -> Response:
    new_owner = (await request.form).get("owner", "")
    change = admin_projects.transfer_project(
        get_session(), logged_in_user(), project_id, new_owner, request_origin()
    )
    return await _done(
        change,
        url_for("admin.project", project_id=project_id),
        f"Transferred to {new_owner.strip()}; the former owners stay on as admins.",
        missing=url_for("admin.projects"),
    )


# --- Mail outbox and webhook deliveries --------------------------------------------------------


def _status() -> str:
    status = request.args.get("status", "")
    return status if status in admin_queues.UNDELIVERED else ""


@bp.get("/mail")
@admin_required
async def mail() -> str:
    status, number = _status(), admin.page_number(request.args.get("page"))
    return await render_template(
        "admin/mail.html",
        status=status,
        page=await admin_queues.mail_page(get_session(), status, number),
    )


@bp.post(f"/mail/<{ID}:message_id>/retry")
@admin_required
async def retry_mail(message_id: int) -> Response:
    change = admin_queues.retry_mail(get_session(), logged_in_user(), message_id, request_origin())
    return await _done(change, url_for("admin.mail"), "The message will be sent again now.")


@bp.get("/webhooks")
@admin_required
async def webhooks() -> str:
    status, number = _status(), admin.page_number(request.args.get("page"))
    return await render_template(
        "admin/webhooks.html",
        status=status,
        page=await admin_queues.deliveries_page(get_session(), status, number),
    )


@bp.post(f"/webhooks/<{BIG_ID}:delivery_id>/retry")
@admin_required
async def retry_delivery(delivery_id: int) -> Response:
    change = admin_queues.retry_delivery(
        get_session(), logged_in_user(), delivery_id, request_origin()
    )
    return await _done(change, url_for("admin.webhooks"), "The delivery will be sent again now.")


# --- Configuration -----------------------------------------------------------------------------


@bp.get("/configuration")
@admin_required
async def configuration() -> str:
    """What `quart --app app check` says, for the settings this app runs with (the messages
    name settings, never their secret values)."""
    config = current_app.config
    problems = await settings_problems(config["CONFIG_NAME"], config)
    return await render_template(
        "admin/configuration.html", config_name=config["CONFIG_NAME"], problems=problems
    )
