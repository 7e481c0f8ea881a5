"""Reading submitted forms: tolerant of missing fields, strict about wrong types."""

from __future__ import annotations

from datetime import date

from werkzeug.datastructures import MultiDict

from app.errors import Invalid


def form_text(form: MultiDict, name: str) -> str:
    return str(form.get(name, ""))


def form_int(form: MultiDict, name: str) -> int | None:
    """An integer field, None when empty; Invalid(field=name) when it is not a number."""
    raw = str(form.get(name, "")).strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise Invalid(f"{name} must be a number.", field=name) from None


def form_ints(form: MultiDict, name: str) -> list[int]:
    values = []
    for raw in form.getlist(name):
        try:
            values.append(int(raw))
        except ValueError:
            raise Invalid(f"{name} must be numbers.", field=name) from None
    return values


def form_date(form: MultiDict, name: str) -> date | None:
    raw = str(form.get(name, "")).strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise Invalid("A date is written YYYY-MM-DD.", field=name) from None
