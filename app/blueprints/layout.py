"""What every page's layout needs: URL converters, template helpers and the sidebar."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from quart import Quart, request
from werkzeug.datastructures import MultiDict
from werkzeug.routing import BaseConverter

from app.blueprints.guards import current_account
from app.db import get_session
from app.markdown import render_markdown
from app.services import projects, search
from app.services.notifications import describe


class ProjectKeyConverter(BaseConverter):
    """A project key in a URL, such as WEB."""

    regex = r"[A-Za-z][A-Za-z0-9]{1,9}"


class IssueKeyConverter(BaseConverter):
    """An issue's name in a URL, such as WEB-12 (/WEB-12 leads to the issue)."""

    regex = r"[A-Za-z][A-Za-z0-9]{1,9}-[0-9]{1,9}"
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
            return {"sidebar": {"projects": [], "saved": [], "current_key": None}}
        session = get_session()
        view_args = request.view_args or {}
        current_key = view_args.get("key", "").split("-")[0].upper() or None
        return {
            "sidebar": {
                "projects": await projects.member_projects(session, viewer),
                "saved": await search.list_saved_searches(session, viewer),
                "current_key": current_key,
            }
        }
