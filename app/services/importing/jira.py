"""Jira: the CSV of "Export issues > Export CSV (all fields)", as Jira writes it.

Its header repeats a column for each value of a multi-valued field (`Labels,Labels`,
`Comment,Comment`); a comment is `date;author;body`; dates look like `04/Dec/26 5:53 PM`.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

from app.models.issue import IssueType, Priority
from app.services.importing.records import (
    CommentRecord,
    ImportData,
    ImportRefused,
    IssueRecord,
    PersonRef,
)

REQUIRED = ("Summary", "Issue key", "Status")
DATE_FORMATS = ("%d/%b/%y %I:%M %p", "%d/%b/%Y %I:%M %p", "%d/%b/%y %H:%M", "%Y-%m-%d %H:%M")

TYPES = {
    "bug": IssueType.BUG,
    "defect": IssueType.BUG,
    "story": IssueType.FEATURE,
    "new feature": IssueType.FEATURE,
    "feature": IssueType.FEATURE,
    "improvement": IssueType.FEATURE,
    "epic": IssueType.FEATURE,
    "task": IssueType.TASK,
    "sub-task": IssueType.TASK,
    "subtask": IssueType.TASK,
}
PRIORITIES = {
    "highest": Priority.URGENT,
    "blocker": Priority.URGENT,
    "high": Priority.HIGH,
    "critical": Priority.HIGH,
    "medium": Priority.MEDIUM,
    "major": Priority.MEDIUM,
    "low": Priority.LOW,
    "minor": Priority.LOW,
    "lowest": Priority.LOW,
    "trivial": Priority.LOW,
}


def parse_date(value: str, where: str) -> datetime:
    """A Jira CSV date (site time, taken as UTC), or ImportRefused naming the line."""
    for layout in DATE_FORMATS:
        try:
            return datetime.strptime(value.strip(), layout).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise ImportRefused(f'{where}: unknown date "{value}"')


def _person(value: str) -> PersonRef | None:
    value = value.strip()
    if not value:
        return None
    if "@" in value:
        return PersonRef(email=value.lower(), name=value.split("@")[0])
    return PersonRef(login=value, name=value)


def _comment(value: str, where: str) -> CommentRecord:
    parts = value.split(";", 2)
    if len(parts) != 3:
        raise ImportRefused(f'{where}: a comment must be "date;author;body", not "{value[:40]}"')
    created, author, body = parts
    return CommentRecord(_person(author), body, parse_date(created, where))


def read_jira(path: Path) -> ImportData:
    """Read and check a Jira CSV export. CPU and file work: run it in a thread. Raises
    ImportRefused naming the line at the first fault."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ImportRefused(f"{path.name} is not UTF-8 text: is it Jira's CSV export?") from None
    if text.lstrip().startswith(("[", "{")) or (path.suffix.lower() == ".zip"):
        raise ImportRefused(f"{path.name} looks like JSON or a .zip, not Jira's CSV export.")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
    except csv.Error as error:
        raise ImportRefused(f"line 1: broken CSV: {error}") from None
    if not header:
        raise ImportRefused(f"{path.name} is empty: Jira's CSV export starts with its header.")
    header = [name.strip() for name in header]
    missing = [name for name in REQUIRED if name not in header]
    if missing:
        raise ImportRefused(
            f"line 1: this is not Jira's CSV export: no {', '.join(repr(m) for m in missing)} "
            "column (the first line must be Jira's header: Summary,Issue key,...)"
        )
    columns: dict[str, list[int]] = {}
    for place, name in enumerate(header):
        columns.setdefault(name, []).append(place)
    data = ImportData(kind="jira")
    unknown: dict[str, None] = {}
    keys: dict[str, str] = {}
    line = 1
    while True:
        start = line + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            raise ImportRefused(f"line {reader.line_num}: broken CSV: {error}") from None
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        where = f"line {start}"
        if len(row) > len(header):
            raise ImportRefused(f"{where}: {len(row)} fields, the header has {len(header)}")

        def values(name: str, row: list[str] = row) -> list[str]:
            return [
                row[i].strip() for i in columns.get(name, []) if i < len(row) and row[i].strip()
            ]

        def one(name: str) -> str:
            found = values(name)
            return found[0] if found else ""

        key = one("Issue key")
        if not key:
            raise ImportRefused(f'{where}: "Issue key" is empty')
        where = f"line {start} ({key})"
        if key in keys:
            raise ImportRefused(f"{where}: issue key {key} is also on {keys[key]}")
        keys[key] = f"line {start}"
        summary = one("Summary")
        if not summary:
            raise ImportRefused(f'{where}: "Summary" is empty')
        status = one("Status")
        if not status:
            raise ImportRefused(f'{where}: "Status" is empty')
        source_type, source_priority = one("Issue Type"), one("Priority")
        issue_type = TYPES.get(source_type.lower()) if source_type else IssueType.TASK
        priority = PRIORITIES.get(source_priority.lower()) if source_priority else Priority.NONE
        if issue_type is None:
            unknown[f'type "{source_type}" (imported as task)'] = None
        if priority is None:
            unknown[f'priority "{source_priority}" (imported as none)'] = None
        created = one("Created")
        updated = one("Updated")
        resolved = one("Resolved")
        data.issues.append(
            IssueRecord(
                where=where,
                external_key=key,
                title=summary,
                description=one("Description"),
                status_name=status,
                type=(issue_type or IssueType.TASK).value,
                priority=(priority or Priority.NONE).value,
                source_type=source_type,
                source_priority=source_priority,
                reporter=_person(one("Reporter")),
                assignee=_person(one("Assignee")),
                labels=values("Labels"),
                milestone=one("Fix Version/s") or one("Sprint") or None,
                created_at=parse_date(created, where) if created else None,
                updated_at=parse_date(updated, where) if updated else None,
                closed_at=parse_date(resolved, where) if resolved else None,
                comments=[_comment(value, where) for value in values("Comment")],
            )
        )
    data.unknown_values = list(unknown)
    return data
