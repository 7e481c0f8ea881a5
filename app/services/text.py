"""Text as every backend can store it: PostgreSQL refuses the NUL character in text columns."""

from __future__ import annotations


def storable(text: str) -> str:
    """`text` without NUL characters (they carry no meaning in a title, a comment or a name)."""
    return text.replace("\x00", "")
