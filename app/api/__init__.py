"""The JSON API under /api/v1: thin handlers over the services, described by OpenAPI."""

from __future__ import annotations

from quart import Blueprint, Quart
from quart_schema import hide

from app.api import (
    attachments,
    auth,
    errors,
    issues,
    me,
    milestones,
    openapi,
    projects,
    relations,
)

bp = Blueprint("api", __name__, url_prefix=openapi.API_PREFIX)
# Fixed order: who calls, then how often (cheap refusals first), then how much they send.
bp.before_request(auth.authenticate)
bp.before_request(auth.count_request)
bp.before_request(auth.limit_body)
bp.after_request(auth.rate_limit_headers)
errors.register(bp)
bp.add_url_rule("/docs", "docs", hide(openapi.docs_page))
for resource in (me.bp, projects.bp, issues.bp, relations.bp, milestones.bp, attachments.bp):
    bp.register_blueprint(resource)


def init_app(app: Quart) -> None:
    openapi.init_app(app)
    app.register_blueprint(bp)
