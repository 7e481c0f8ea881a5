"""A project's webhooks, under its settings: list, add, change, remove, redeliver, ping."""

from __future__ import annotations

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
from werkzeug.datastructures import MultiDict

from app.blueprints.guards import logged_in_user, login_required
from app.db import get_session
from app.errors import Invalid
from app.models import Project
from app.models.webhook import ALL_EVENTS
from app.outbound.webhooks.targets import TargetPolicy
from app.services import project_webhooks, projects

bp = Blueprint("webhooks", __name__)

Page = str | Response | tuple[str, int]
ID = "int(max=2147483647)"
BIG_ID = "int(max=9223372036854775807)"  # deliveries are numbered in a 64-bit column


def _policy() -> TargetPolicy:
    return TargetPolicy.from_config(current_app.config)


async def _project(key: str) -> Project:
    """Private projects are NotFound to outsiders; the services refuse non-admins."""
    return await projects.project_by_key(get_session(), logged_in_user(), key)


def _chosen_events(form: MultiDict) -> list[str]:
    if form.get("all_events"):
        return [ALL_EVENTS]
    return [str(kind) for kind in form.getlist("events")]


async def _index_page(
    project: Project,
    form: MultiDict | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> tuple[str, int]:
    hooks = await project_webhooks.project_webhooks(get_session(), logged_in_user(), project.id)
    page = await render_template(
        "projects/webhooks.html",
        project=project,
        hooks=hooks,
        event_kinds=project_webhooks.EVENT_KINDS,
        form=form if form is not None else MultiDict({"all_events": "1"}),
        errors=errors or {},
    )
    return page, status


async def _hook_page(
    project: Project, webhook_id: int, errors: dict[str, str] | None = None, status: int = 200
) -> tuple[str, int]:
    hook, deliveries = await project_webhooks.webhook_page(
        get_session(), logged_in_user(), project.id, webhook_id
    )
    page = await render_template(
        "projects/webhook.html",
        project=project,
        hook=hook,
        deliveries=deliveries,
        event_kinds=project_webhooks.EVENT_KINDS,
        all_events=ALL_EVENTS,
        errors=errors or {},
    )
    return page, status


@bp.get("/p/<project_key:key>/settings/webhooks")
@login_required
async def index(key: str) -> Page:
    return await _index_page(await _project(key))


@bp.post("/p/<project_key:key>/settings/webhooks")
@login_required
async def create(key: str) -> Page:
    project = await _project(key)
    form = await request.form
    try:
        hook = await project_webhooks.create_webhook(
            get_session(),
            logged_in_user(),
            project.id,
            url=str(form.get("url", "")),
            events=_chosen_events(form),
            policy=_policy(),
        )
    except Invalid as refusal:
        errors = refusal.field_errors or {"form": refusal.message}
        return await _index_page(await _project(key), form, errors, refusal.status)
    await flash("Webhook added. Configure its receiver with the secret below.")
    return redirect(url_for("webhooks.show", key=project.key, webhook_id=hook.id))


@bp.get(f"/p/<project_key:key>/settings/webhooks/<{ID}:webhook_id>")
@login_required
async def show(key: str, webhook_id: int) -> Page:
    return await _hook_page(await _project(key), webhook_id)


@bp.post(f"/p/<project_key:key>/settings/webhooks/<{ID}:webhook_id>")
@login_required
async def update(key: str, webhook_id: int) -> Page:
    """One form, several buttons: save, pause/resume, new secret, delete."""
    project = await _project(key)
    session, viewer = get_session(), logged_in_user()
    form = await request.form
    action = form.get("action", "save")
    try:
        if action == "delete":
            await project_webhooks.delete_webhook(session, viewer, project.id, webhook_id)
            await flash("Webhook deleted.")
            return redirect(url_for("webhooks.index", key=project.key))
        if action in ("pause", "resume"):
            await project_webhooks.set_webhook_active(
                session, viewer, project.id, webhook_id, action == "resume"
            )
            message = "Webhook paused." if action == "pause" else "Webhook resumed."
        elif action == "new_secret":
            await project_webhooks.new_webhook_secret(session, viewer, project.id, webhook_id)
            message = "New secret made: update your receiver."
        else:
            await project_webhooks.update_webhook(
                session,
                viewer,
                project.id,
                webhook_id,
                url=str(form.get("url", "")),
                events=_chosen_events(form),
                active=bool(form.get("active")),
                policy=_policy(),
            )
            message = "Webhook saved."
    except Invalid as refusal:
        errors = refusal.field_errors or {"form": refusal.message}
        return await _hook_page(await _project(key), webhook_id, errors, refusal.status)
    await flash(message)
    return redirect(url_for("webhooks.show", key=project.key, webhook_id=webhook_id))


@bp.post(f"/p/<project_key:key>/settings/webhooks/<{ID}:webhook_id>/ping")
@login_required
async def ping(key: str, webhook_id: int) -> Page:
    project = await _project(key)
    await project_webhooks.send_ping(get_session(), logged_in_user(), project.id, webhook_id)
    await flash("Ping queued: it appears below once sent.")
    return redirect(url_for("webhooks.show", key=project.key, webhook_id=webhook_id))


@bp.post(
    f"/p/<project_key:key>/settings/webhooks/<{ID}:webhook_id>"
    f"/deliveries/<{BIG_ID}:delivery_id>/redeliver"
)
@login_required
async def redeliver(key: str, webhook_id: int, delivery_id: int) -> Page:
    project = await _project(key)
    await project_webhooks.redeliver(
        get_session(), logged_in_user(), project.id, webhook_id, delivery_id
    )
    await flash("Delivery queued again.")
    return redirect(url_for("webhooks.show", key=project.key, webhook_id=webhook_id))
