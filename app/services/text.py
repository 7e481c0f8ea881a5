"""Text as every backend can store it: PostgreSQL refuses the NUL character in text columns."""

from __future__ import annotations

from app.errors import Invalid

# An issue's or a milestone's Markdown description.
DESCRIPTION_MAX = 50_000


def storable(text: str) -> str:
    """`text` without NUL characters (they carry no meaning in a title, a comment or a name)."""
    return text.replace("\x00", "")


def description_text(description: str) -> str:
    """`description` as stored, or Invalid when it is longer than DESCRIPTION_MAX."""
    description = storable(description)
    if len(description) > DESCRIPTION_MAX:
        raise Invalid(
            f"A description is at most {DESCRIPTION_MAX} characters.", field="description"
        )
    return description
