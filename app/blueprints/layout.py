"""What every page's layout needs: URL converters, template helpers and the sidebar."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import flask.templating
from quart import Quart, request
from werkzeug.datastructures import MultiDict
from werkzeug.routing import BaseConverter

from app.blueprints.guards import current_account
from app.blueprints.page_cache import cached_part, render_part
from app.db import get_session
from app.models.issue import issue_key_pattern
from app.models.project import key_pattern
from app.rendering.markdown import render_markdown
from app.services import projects
from app.services.history import describe


class ProjectKeyConverter(BaseConverter):
    """A project key in a URL, such as WEB."""

    regex = key_pattern(any_case=True)


class IssueKeyConverter(BaseConverter):
    """An issue's name in a URL, such as WEB-12 (/WEB-12 leads to the issue)."""

    regex = issue_key_pattern(any_case=True)
    # Tried after the fixed routes, so /projects or /search never read as an issue.
    weight = 200


def merge_query(args: MultiDict, **changes: Any) -> str:
    """The current query string with some parameters replaced (pagination links)."""
    merged = MultiDict(args)
    for name, value in changes.items():
        merged.setlist(name, [value] if value is not None else [])
    return urlencode(list(merged.items(multi=True)))


def init_app(app: Quart) -> None:
    app.url_map.converters["project_key"] = ProjectKeyConverter
    app.url_map.converters["issue_key"] = IssueKeyConverter
    app.jinja_env.globals["render_markdown"] = render_markdown
    app.jinja_env.globals["describe_activity"] = describe
    app.jinja_env.filters["merge_query"] = merge_query
    # Front-end libraries are installed from npm by `make`; pages work without them.
    vendor = Path(app.static_folder or "") / "vendor" / "htmx.min.js"
    app.jinja_env.globals["vendor_scripts"] = vendor.exists()

    @app.context_processor
    async def sidebar() -> dict[str, Any]:
        viewer = current_account()
        if viewer is None or request.endpoint == "static":
            return {"sidebar": {"projects": [], "saved": []}, "sidebar_html": ""}
        session = get_session()
        view_args = request.view_args or {}
        current_key = view_args.get("key", "").split("-")[0].upper() or None
        links = await projects.navigation(session, viewer)
        content = {"projects": links.projects, "saved": links.saved, "current_key": current_key}
        # Kept under its own content, so it can never be stale: only its rendering is saved.
        key = ("sidebar", tuple(links.projects), tuple(links.saved), current_key)
        html = await cached_part(key, lambda: render_part("_sidebar.html", sidebar=content))
        return {"sidebar": content, "sidebar_html": html}


def run_context_processors_in_the_loop(app: Quart) -> None:
    """Each blueprint carries Flask's synchronous default context processor, which Quart runs
    in a thread on every render; Quart's own asynchronous one already gives templates the same
    g, request and session. Call after the blueprints are registered."""
    flask_default = getattr(flask.templating, "_default_template_ctx_processor", None)
    if flask_default is None:  # a Flask without it: nothing to take out
        return
    for name, processors in app.template_context_processors.items():
        if name is not None:
            processors[:] = [p for p in processors if p is not flask_default]
