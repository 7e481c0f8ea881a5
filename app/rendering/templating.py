"""A synchronous companion to Quart's template environment, for parts rendered many at a time."""

from __future__ import annotations

from jinja2 import Environment


def synchronous_templates(templates: Environment) -> Environment:
    """An overlay of `templates` (same loader, globals and filters) that renders synchronously:
    for templates that call nothing asynchronous, a fraction of the cost of Quart's asynchronous
    rendering per call. Jinja 3.1.5 and later apply enable_async to an overlay; with an older one
    every page would fail, so this refuses to start instead."""
    overlay = templates.overlay(enable_async=False)
    if overlay.is_async:
        raise RuntimeError("Issues needs Jinja2 3.1.5 or later: run `pip install -e .` again")
    return overlay
