"""The archive's format: its records, made from the project tables' own columns (decision 0030)."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Table

from app.models import (
    Activity,
    Attachment,
    Comment,
    Issue,
    IssueRelation,
    Label,
    Membership,
    Milestone,
    Project,
    Watcher,
    WorkflowStatus,
)

FORMAT = "issues-archive"
VERSION = 1
RECORDS = "project.jsonl"
BATCH = 1000  # rows read per query while exporting, and inserted per statement on restore

# What a foreign key is written as: the referenced row's name in the archive.
_REFERENCE_KINDS = {
    "user": "person",  # its address
    "issue": "issue",  # its number
    "workflow_status": "status",  # its name
    "milestone": "milestone",  # its title
    "comment": "comment",  # its `ref`, the comment's place in the archive
}


# Ids inside activity payloads, by key: what they are written as. The burn-up chart reads
# `milestone: [before, after]` ids; the live layer reads `comment_id`. In the archive such an id
# is {"$ref": kind, "name": ...} (name None when its row is gone), and a restore writes the new
# row's id back.
PAYLOAD_REFS = {
    "comment_id": "comment",
    "attachment_id": "attachment",
    "status_id": "status",
    "user_id": "person",
    "sub_issue_id": "issue",
    "other_issue_id": "issue",
}


def payload_ids(kind: str, payload: dict[str, Any]) -> list[tuple[Any, int, str]]:
    """Where a payload holds ids: (container, key or index, kind of row)."""
    found: list[tuple[Any, int, str]] = []
    for key, target in PAYLOAD_REFS.items():
        if isinstance(payload.get(key), int):
            found.append((payload, key, target))  # type: ignore[arg-type]
    if kind.startswith("milestone.") and isinstance(payload.get("id"), int):
        found.append((payload, "id", "milestone"))  # type: ignore[arg-type]
    pair = payload.get("milestone")
    if (
        isinstance(pair, list)
        and len(pair) == 2
        and all(v is None or (isinstance(v, int) and not isinstance(v, bool)) for v in pair)
    ):
        found += [(pair, place, "milestone") for place in (0, 1) if pair[place] is not None]
    return found


@dataclass(frozen=True)
class Part:
    """One table's records: `type` in the archive, its table, the order rows are written in."""

    type: str
    table: Table
    order: tuple[str, ...]

    def columns(self) -> list[Any]:
        left_out = {"id", "project_id"} | _LEFT_OUT.get(self.type, set())
        return [c for c in self.table.columns if c.name not in left_out]

    def references(self) -> dict[str, str]:
        """column name -> the kind of name it is written as"""
        found = {}
        for column in self.columns():
            for key in column.foreign_keys:
                found[column.name] = _REFERENCE_KINDS[key.column.table.name]
        return found

    def fields(self) -> list[str]:
        """Every field a record of this part must have."""
        names = [
            field_name(c.name) if c.name in self.references() else c.name for c in self.columns()
        ]
        return [plain_name(name) for name in names] + _EXTRA.get(self.type, [])


def field_name(column: str) -> str:
    return column.removesuffix("_id")


def plain_name(column: str) -> str:
    """A column's field name: an issue's `type` would hide the record's own."""
    return "issue_type" if column == "type" else column


_EXTRA = {"issue": ["labels"], "comment": ["ref"], "attachment": ["ref", "file", "thumbnail"]}
# storage_key is the instance's own name for the bytes: the archive has `file` instead.
_LEFT_OUT = {"attachment": {"storage_key"}}

PARTS = [
    Part("status", WorkflowStatus.__table__, ("position", "id")),
    Part("label", Label.__table__, ("name",)),
    Part("milestone", Milestone.__table__, ("id",)),
    Part("member", Membership.__table__, ("created_at", "user_id")),
    Part("issue", Issue.__table__, ("number",)),
    Part("comment", Comment.__table__, ("id",)),
    Part("relation", IssueRelation.__table__, ("id",)),
    Part("watcher", Watcher.__table__, ("issue_id", "user_id")),
    Part("attachment", Attachment.__table__, ("id",)),
    Part("activity", Activity.__table__, ("seq",)),
]
PART = {part.type: part for part in PARTS}
PROJECT_FIELDS = [c.name for c in Project.__table__.columns if c.name != "id"]


def columns_of(part: Part) -> list[Any]:
    return part.columns()


def json_value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def iter_lines(path: Path) -> Iterator[dict[str, Any]]:
    """The archive's records, one at a time (for tests and tools)."""
    with zipfile.ZipFile(path) as archive, archive.open(RECORDS) as raw:
        for text in raw:
            yield json.loads(text)
