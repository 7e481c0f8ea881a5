"""The search box's language: a query parsed into qualifiers and words, or where it fails."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date

from app.errors import Invalid
from app.models.issue import IssueType, Priority

QUERY_MAX_LENGTH = 500  # the length of SavedSearch.query
QUERY_MAX_TERMS = 20
QUERY_MAX_WORDS = 32  # free words, counted after splitting at punctuation

SORTS = (
    "updated-desc",
    "updated-asc",
    "created-desc",
    "created-asc",
    "priority-desc",
    "priority-asc",
    "number-asc",
    "number-desc",
    "milestone-asc",  # by the milestone's due date; issues without one (or it without a date) last
    "milestone-desc",
)
DEFAULT_SORT = "updated-desc"
DATE_QUALIFIERS = ("created", "updated")
QUALIFIERS = (
    "assignee",
    "blocks",
    "created",
    "has",
    "imported",  # an imported issue's old key or number: imported:ABC-123, imported:#12
    "is",
    "label",
    "parent",
    "milestone",
    "no",
    "priority",
    "project",
    "reporter",
    "sort",
    "status",
    "type",
    "updated",
)
# The qualifiers whose values are a fixed list.
VOCABULARIES: dict[str, tuple[str, ...]] = {
    "is": ("open", "closed", "blocked", "duplicate"),
    "has": ("sub-issues",),
    "no": ("milestone",),  # no:milestone is milestone:none
    "priority": tuple(priority.value for priority in Priority),
    "type": tuple(kind.value for kind in IssueType),
}

_QUALIFIER_NAME = re.compile(r"([A-Za-z][A-Za-z_]*):")
_DATE_VALUE = re.compile(r"(>=|<=|>|<)?(.*)", re.DOTALL)
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# Letters and digits: what both full-text tokenizers keep (everything else separates words).
_WORD = re.compile(r"[^\W_]+")


class QueryError(Invalid):
    """A search that does not parse; `position` is the 0-based offset of the fault."""

    def __init__(self, message: str, *, position: int) -> None:
        super().__init__(message, field="q", position=position)
        self.position = position


@dataclass(frozen=True)
class Qualifier:
    """One `name:value` filter. Dates carry their comparison (`>`, `>=`, `<`, `<=`, or "" for
    that whole day) and their value as YYYY-MM-DD."""

    name: str
    value: str
    negated: bool = False
    comparison: str = ""


@dataclass(frozen=True)
class Words:
    """Free words, split at punctuation (each must match; from three letters on, as a prefix),
    or a quoted phrase (its words in that order)."""

    tokens: tuple[str, ...]
    phrase: bool = False
    negated: bool = False


@dataclass(frozen=True)
class Query:
    text: str = ""
    qualifiers: tuple[Qualifier, ...] = ()
    words: tuple[Words, ...] = ()
    sort: str = DEFAULT_SORT


def parse_query(text: str) -> Query:
    """Parse the search box. Raises QueryError saying where and why."""
    if len(text) > QUERY_MAX_LENGTH:
        raise QueryError(
            f"A search is at most {QUERY_MAX_LENGTH} characters; this one has {len(text)}.",
            position=QUERY_MAX_LENGTH,
        )
    for position, character in enumerate(text):
        if not character.isspace() and unicodedata.category(character) in ("Cc", "Cs"):
            raise QueryError(
                f"Unexpected control character at column {position + 1}", position=position
            )
    parser = _Parser(text)
    return parser.parse()


def _column(position: int) -> str:
    return f"column {position + 1}"


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.at = 0
        self.qualifiers: list[Qualifier] = []
        self.words: list[Words] = []
        self.sort: str | None = None
        self.terms = 0
        self.tokens = 0

    def parse(self) -> Query:
        while True:
            while self.at < len(self.text) and self.text[self.at].isspace():
                self.at += 1
            if self.at >= len(self.text):
                break
            self.term()
        return Query(
            text=self.text,
            qualifiers=tuple(self.qualifiers),
            words=tuple(self.words),
            sort=self.sort or DEFAULT_SORT,
        )

    def term(self) -> None:
        start = self.at
        self.terms += 1
        if self.terms > QUERY_MAX_TERMS:
            raise QueryError(
                f"Too many terms at {_column(start)}; a search has at most {QUERY_MAX_TERMS}",
                position=start,
            )
        negated = self._peek("-") and self.at + 1 < len(self.text)
        negated = negated and not self.text[self.at + 1].isspace()
        if negated:
            self.at += 1
        if self._peek('"'):
            self._add_words(start, self.quoted(), phrase=True, negated=negated)
            return
        name = _QUALIFIER_NAME.match(self.text, self.at)
        if name is not None and not self.text.startswith("//", name.end()):
            self.qualifier(name.group(1).lower(), name.start(), name.end(), negated)
            return
        self._add_words(start, self.bare(), phrase=False, negated=negated)

    def quoted(self) -> str:
        opening = self.at
        closing = self.text.find('"', opening + 1)
        if closing < 0:
            raise QueryError(
                f'Unclosed quote at {_column(opening)}: close it with another "',
                position=opening,
            )
        self.at = closing + 1
        return self.text[opening + 1 : closing]

    def bare(self) -> str:
        start = self.at
        while self.at < len(self.text) and not self.text[self.at].isspace():
            self.at += 1
        return self.text[start : self.at]

    def _peek(self, character: str) -> bool:
        return self.text.startswith(character, self.at)

    def _add_words(self, start: int, text: str, *, phrase: bool, negated: bool) -> None:
        tokens = tuple(_WORD.findall(text.lower()))
        self.tokens += len(tokens)
        if self.tokens > QUERY_MAX_WORDS:
            raise QueryError(
                f"Too many words at {_column(start)}; a search has at most {QUERY_MAX_WORDS}",
                position=start,
            )
        if tokens:
            self.words.append(Words(tokens, phrase=phrase and len(tokens) > 1, negated=negated))

    def qualifier(self, name: str, start: int, value_start: int, negated: bool) -> None:
        if name not in QUALIFIERS:
            raise QueryError(
                f'Unknown qualifier "{name}:" at {_column(start)}; known: '
                f"{', '.join(QUALIFIERS)} (put words with a colon in quotes)",
                position=start,
            )
        self.at = value_start
        quoted = self._peek('"')
        raw = self.quoted() if quoted else self.bare()
        value = raw.strip()
        # Where the value itself starts, for pointing at it in an error.
        value_start += quoted + len(raw) - len(raw.lstrip())
        if not value:
            raise QueryError(
                f'"{name}:" needs a value at {_column(value_start)}', position=value_start
            )
        if name == "sort":
            self._sort(value, start, value_start, negated)
        elif name in DATE_QUALIFIERS:
            comparison, day = _parse_date(value, value_start)
            self.qualifiers.append(Qualifier(name, day, negated, comparison))
        else:
            self.qualifiers.append(Qualifier(name, _normalise(name, value, value_start), negated))

    def _sort(self, value: str, start: int, value_start: int, negated: bool) -> None:
        if negated:
            raise QueryError(f'"sort:" cannot be negated at {_column(start)}', position=start)
        if self.sort is not None:
            raise QueryError(f'A second "sort:" at {_column(start)}; use one', position=start)
        if value.lower() not in SORTS:
            raise QueryError(
                f'Unknown sort "{value}" at {_column(value_start)}; use one of {", ".join(SORTS)}',
                position=value_start,
            )
        self.sort = value.lower()


def _normalise(name: str, value: str, position: int) -> str:
    allowed = VOCABULARIES.get(name)
    if allowed is not None:
        if value.lower() not in allowed:
            raise QueryError(
                f'Unknown value "{value}" for "{name}:" at {_column(position)}; '
                f"use one of {', '.join(allowed)}",
                position=position,
            )
        return value.lower()
    if name in ("assignee", "reporter"):
        return value.lower().removeprefix("@")
    if name in ("project", "parent", "blocks"):
        return value.upper()
    return value  # status and label names match whatever their case


def _parse_date(value: str, position: int) -> tuple[str, str]:
    match = _DATE_VALUE.fullmatch(value)
    assert match is not None  # the pattern matches any text
    comparison, day = match.group(1) or "", match.group(2)
    try:
        if not _ISO_DATE.fullmatch(day):
            raise ValueError(day)
        date.fromisoformat(day)
    except ValueError:
        raise QueryError(
            f'"{day}" is not a date (use YYYY-MM-DD) at {_column(position + len(comparison))}',
            position=position + len(comparison),
        ) from None
    return comparison, day
