"""Opaque page cursors and the `next` links that carry them (in the body and a Link header)."""

from __future__ import annotations

import base64
import binascii
import re
from urllib.parse import urlencode

from quart import request

from app.errors import Invalid
from app.models import LARGEST_ID

_CURSOR = re.compile(r"[A-Za-z0-9_-]{1,40}")


def id_cursor(last_id: int) -> str:
    """A cursor after the row `last_id` of a list in id order."""
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def after_id(cursor: str | None) -> int:
    """The id a cursor made by id_cursor marks (0 for the first page); Invalid when garbled."""
    if cursor is None:
        return 0
    try:
        if not _CURSOR.fullmatch(cursor):
            raise ValueError(cursor)
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, number = raw.partition(":")
        if kind != "id" or not number.isascii() or not number.isdigit():
            raise ValueError(cursor)
        value = int(number)
        if not 0 < value <= LARGEST_ID:
            raise ValueError(cursor)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise Invalid(
            "This page link is broken; start again from the first page.", field="after"
        ) from None
    return value


def next_link(**changes: str | int | None) -> str:
    """This request's path and query with some parameters replaced: the next page's URL."""
    args = {name: value for name, value in request.args.items()}
    for name, value in changes.items():
        if value is None:
            args.pop(name, None)
        else:
            args[name] = str(value)
    return f"{request.path}?{urlencode(args)}"


def link_header(next_url: str | None) -> dict[str, str]:
    """The Link header that points at the next page, when there is one."""
    return {"Link": f'<{next_url}>; rel="next"'} if next_url else {}
