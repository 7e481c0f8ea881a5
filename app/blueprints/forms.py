"""Reading submitted forms: tolerant of missing fields, strict about wrong types."""

from __future__ import annotations

from datetime import date

from werkzeug.datastructures import MultiDict

from app.errors import Invalid

# Ids and versions are 32-bit integers in the database: larger numbers name nothing.
LARGEST_ID = 2**31 - 1


def _number(raw: str, name: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise Invalid(f"{name} must be a number.", field=name) from None
    if not 0 <= value <= LARGEST_ID:
        raise Invalid(f"{name} is out of range.", field=name)
    return value


def form_text(form: MultiDict, name: str) -> str:
    return str(form.get(name, ""))


def form_int(form: MultiDict, name: str) -> int | None:
    """An integer field, None when empty; Invalid(field=name) when it is not a number."""
    raw = str(form.get(name, "")).strip()
    if not raw:
        return None
    return _number(raw, name)


def form_ints(form: MultiDict, name: str) -> list[int]:
    return [_number(str(raw).strip(), name) for raw in form.getlist(name)]


def form_date(form: MultiDict, name: str) -> date | None:
    raw = str(form.get(name, "")).strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise Invalid("A date is written YYYY-MM-DD.", field=name) from None
