"""The main part of a project's pages, rendered once per state of the project and viewer.

Every change to a project (an issue, a comment, its workflow, labels or members) is written to
its event log in the change's own transaction, and bumps `project.last_event_seq` there. So a
page part keyed by that number, read in the request's access check, is stale only if the row
is: each worker keeps parts it has rendered and serves them again until the project moves on.
What the log does not cover is in the key (the viewer, whether they may write, or watch) or is
bounded by an age: people's names and other projects' issues named in the text (decision 0012).

Forms in a shared part carry a placeholder for the CSRF token, filled in per request, because
the token belongs to the browser's session, not to the viewer.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

from markupsafe import Markup
from quart import Quart, current_app, g, request

from app.blueprints.guards import csrf_token
from app.models import Project, User
from app.rendering.templating import synchronous_templates

PartKey = tuple[Hashable, ...]


class PageCache:
    """A per-worker memory of rendered page parts, least recently used first out, bounded by
    their total size (in characters: bytes for ASCII pages) and their age."""

    def __init__(self, max_bytes: int, max_age_seconds: float) -> None:
        self.max_bytes = max_bytes
        self.max_age_seconds = max_age_seconds
        # key -> (made at, HTML, what the part relied on beyond its key: see cached_part)
        self.parts: OrderedDict[PartKey, tuple[float, str, Hashable]] = OrderedDict()
        self.size = 0
        self.renders = 0  # parts actually rendered (tests count them)
        # Random per worker, so that no text a user writes can stand for the token.
        self.csrf_placeholder = f"csrf-{secrets.token_urlsafe(18)}"

    def get(self, key: PartKey) -> str | None:
        found = self.get_with_proof(key)
        return found[0] if found is not None else None

    def get_with_proof(self, key: PartKey) -> tuple[str, Hashable] | None:
        found = self.parts.get(key)
        if found is None:
            return None
        made_at, html, proof = found
        if time.monotonic() - made_at > self.max_age_seconds:
            self._drop(key)
            return None
        self.parts.move_to_end(key)
        return html, proof

    def put(self, key: PartKey, html: str, proof: Hashable = None) -> None:
        if key in self.parts:
            self._drop(key)
        if len(html) > self.max_bytes:
            return
        self.parts[key] = (time.monotonic(), html, proof)
        self.size += len(html)
        while self.size > self.max_bytes:
            self._drop(next(iter(self.parts)))

    def forget(self, key: PartKey) -> None:
        if key in self.parts:
            self._drop(key)

    def clear(self) -> None:
        self.parts.clear()
        self.size = 0

    def _drop(self, key: PartKey) -> None:
        _, html, _ = self.parts.pop(key)
        self.size -= len(html)


def project_part_key(
    kind: str, project: Project, viewer: User, writable: bool, *more: Hashable
) -> PartKey:
    """The key of a project page's part: the project's state, and who looks at it. The viewer's
    own name is in it so that someone who renames themselves sees it at once on their pages."""
    state = (project.id, project.last_event_seq)
    return (kind, *state, viewer.id, viewer.display_name, writable, *more)


def page_cache() -> PageCache:
    return current_app.extensions["page_cache"]


def template_csrf_token() -> str:
    """What templates call for the CSRF token: the placeholder while a shared part renders."""
    if g.get("rendering_shared_part"):
        return page_cache().csrf_placeholder
    return csrf_token()


async def render_part(template: str, **context: Any) -> str:
    """A partial rendered without the page's context processors (the sidebar's queries): it
    sees the app's globals, the request and what it is given. Parts call nothing asynchronous,
    and a synchronous render of the issue page's macros takes half the time of Quart's
    asynchronous one (the environment shares the app's loader, globals and filters)."""
    templates = current_app.extensions["part_templates"]
    return templates.get_template(template).render(request=request, **context)


async def cached_part(key: PartKey | None, render: Callable[[], Awaitable[str]]) -> Markup:
    """The part `render` makes, from the cache when it holds `key`, with this request's CSRF
    token in its forms. A key of None renders afresh and keeps nothing (an error shown once).
    """

    async def render_without_proof() -> tuple[str, Hashable]:
        return await render(), None

    return await proven_part(key, render_without_proof, None)


# Whether what a kept part relied on beyond its key (its proof) still holds.
Recheck = Callable[[Any], Awaitable[bool]]


async def proven_part(
    key: PartKey | None,
    render: Callable[[], Awaitable[tuple[str, Hashable]]],
    recheck: Recheck | None,
) -> Markup:
    """cached_part for a part that relies on more than its key can say: `render` returns the
    HTML and a proof of that (the issues its texts link to, say), and a kept part serves again
    only while `recheck(proof)` says it still holds."""
    cache = page_cache()
    found = cache.get_with_proof(key) if key is not None else None
    if found is not None and recheck is not None and not await recheck(found[1]):
        found = None
    if found is None:
        g.rendering_shared_part = True
        try:
            html, proof = await render()
        finally:
            g.rendering_shared_part = False
        cache.renders += 1
        if key is not None:
            cache.put(key, html, proof)
    else:
        html = found[0]
    # Safe: the part's template escaped what it shows, and the token is ours.
    return Markup(html.replace(cache.csrf_placeholder, csrf_token()))  # noqa: S704


def init_app(app: Quart) -> None:
    app.extensions["page_cache"] = PageCache(
        app.config["PAGE_CACHE_BYTES"], app.config["PAGE_CACHE_SECONDS"]
    )
    # After guards.init_app, whose token function this wraps.
    app.jinja_env.globals["csrf_token"] = template_csrf_token
    app.extensions["part_templates"] = synchronous_templates(app.jinja_env)
