"""GitHub Issues: the JSON of the REST API's issues, comments, labels and milestones endpoints.

The export is a folder (or a .zip of one) holding `issues.json` and, optionally,
`comments.json`, `labels.json` and `milestones.json`: each a JSON array, the API's pages
concatenated (GET /repos/{o}/{r}/issues?state=all, /issues/comments, /labels,
/milestones?state=all).
"""

from __future__ import annotations

import json
import re
import zipfile
from datetime import date, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from app.models.issue import StatusCategory
from app.services.importing.records import (
    CommentRecord,
    ImportData,
    ImportRefused,
    IssueRecord,
    LabelRecord,
    MilestoneRecord,
    PersonRef,
    Skipped,
)

FILES = ("issues.json", "comments.json", "labels.json", "milestones.json")
_ISSUE_URL = re.compile(r"/issues/([0-9]+)$")
_COLOR = re.compile(r"#?([0-9a-fA-F]{6})")


def _read_sources(path: Path) -> dict[str, bytes]:
    """The export's files by name, from a folder or a .zip (at its top or in one folder)."""
    if path.is_dir():
        return {name: (path / name).read_bytes() for name in FILES if (path / name).is_file()}
    if not zipfile.is_zipfile(path):
        raise ImportRefused(
            f"{path.name} is neither a folder nor a .zip of GitHub's JSON files "
            f"({', '.join(FILES)})."
        )
    found: dict[str, bytes] = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                name = PurePosixPath(info.filename).name
                if name in FILES and not info.is_dir() and name not in found:
                    found[name] = archive.read(info)
    except (zipfile.BadZipFile, OSError) as error:
        raise ImportRefused(f"{path.name} is a broken .zip: {error}.") from None
    return found


def _array(name: str, raw: bytes) -> list[Any]:
    try:
        value = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise ImportRefused(f"{name} is not UTF-8 text: is it really GitHub's JSON?") from None
    except json.JSONDecodeError as error:
        raise ImportRefused(
            f"{name} is not JSON (line {error.lineno}, column {error.colno}: {error.msg}); "
            "a GitHub export is the API's JSON arrays."
        ) from None
    if not isinstance(value, list):
        raise ImportRefused(f"{name} must be a JSON array (the API's pages concatenated).")
    return value


class _Record:
    """One object of a file, and how an error names it."""

    def __init__(self, file: str, index: int, value: Any, label: str = "") -> None:
        self.file, self.index, self.value = file, index, value
        self.where = f"{file} record {index}" + (f" ({label})" if label else "")
        if not isinstance(value, dict):
            self.fail("is not a JSON object")

    def fail(self, message: str) -> None:
        raise ImportRefused(f"{self.where}: {message}")

    def text(self, name: str, *, required: bool = False) -> str:
        value = self.value.get(name)
        if value is None:
            if required:
                self.fail(f'"{name}" is missing')
            return ""
        if not isinstance(value, str):
            self.fail(f'"{name}" must be a string')
        return value

    def moment(self, name: str, *, required: bool = False) -> datetime | None:
        raw = self.text(name, required=required)
        if not raw:
            return None
        try:
            return datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            self.fail(f'"{name}" is not a date and time: "{raw}"')
        raise AssertionError  # unreachable: fail raises

    def person(self, name: str) -> PersonRef | None:
        value = self.value.get(name)
        if value is None:
            return None
        if not isinstance(value, dict) or not isinstance(value.get("login"), str):
            self.fail(f'"{name}" must be a user object with a "login"')
        return PersonRef(
            login=value["login"], email=value.get("email") or "", name=value.get("name") or ""
        )


def _milestone_title(record: _Record) -> str | None:
    value = record.value.get("milestone")
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("title"), str):
        record.fail('"milestone" must be an object with a "title"')
    return value["title"]


def _labels(record: _Record) -> list[str]:
    value = record.value.get("labels") or []
    if not isinstance(value, list):
        record.fail('"labels" must be an array')
    names = []
    for label in value:
        name = label.get("name") if isinstance(label, dict) else label
        if not isinstance(name, str) or not name.strip():
            record.fail('"labels" must hold label objects with a "name"')
        names.append(name.strip())
    return names


def _issue(index: int, value: Any) -> IssueRecord | Skipped:
    number = value.get("number") if isinstance(value, dict) else None
    record = _Record("issues.json", index, value, f"#{number}" if number is not None else "")
    if not isinstance(number, int) or isinstance(number, bool) or number < 1:
        record.fail('"number" must be a positive whole number')
    if "pull_request" in value:
        return Skipped(record.where, "a pull request, not an issue")
    state = record.text("state", required=True)
    if state not in ("open", "closed"):
        record.fail('"state" must be "open" or "closed"')
    title = record.text("title", required=True).strip()
    if not title:
        record.fail('"title" is empty')
    return IssueRecord(
        where=record.where,
        external_key=f"#{number}",
        external_number=number,
        title=title,
        description=record.text("body"),
        category=StatusCategory.DONE if state == "closed" else StatusCategory.TODO,
        reporter=record.person("user"),
        assignee=record.person("assignee"),
        labels=_labels(record),
        milestone=_milestone_title(record),
        created_at=record.moment("created_at", required=True),
        updated_at=record.moment("updated_at"),
        closed_at=record.moment("closed_at"),
    )


def _comment(index: int, value: Any) -> tuple[int, CommentRecord]:
    record = _Record("comments.json", index, value)
    match = _ISSUE_URL.search(record.text("issue_url", required=True))
    if match is None:
        record.fail('"issue_url" must end in /issues/NUMBER')
    created = record.moment("created_at", required=True)
    assert match is not None and created is not None
    body = record.text("body")
    return int(match.group(1)), CommentRecord(record.person("user"), body, created)


def _label(index: int, value: Any) -> LabelRecord:
    record = _Record("labels.json", index, value)
    name = record.text("name", required=True).strip()
    color = _COLOR.fullmatch(record.text("color") or "6b7280")
    if color is None:
        record.fail('"color" must be six hex digits, such as "f29513"')
    assert color is not None
    return LabelRecord(name=name, color=f"#{color.group(1).lower()}")


def _milestone(index: int, value: Any) -> MilestoneRecord:
    record = _Record("milestones.json", index, value)
    title = record.text("title", required=True).strip()
    if not title:
        record.fail('"title" is empty')
    due = record.moment("due_on")
    state = record.text("state") or "open"
    if state not in ("open", "closed"):
        record.fail('"state" must be "open" or "closed"')
    closed = record.moment("closed_at") if state == "closed" else None
    if state == "closed" and closed is None:
        closed = record.moment("updated_at") or record.moment("created_at")
    return MilestoneRecord(
        title=title,
        description=record.text("description"),
        due_date=date(due.year, due.month, due.day) if due else None,
        closed_at=closed,
    )


def read_github(path: Path) -> ImportData:
    """Read and check a GitHub export (a folder or a .zip). CPU and file work: run it in a
    thread. Raises ImportRefused naming the file and record at the first fault."""
    sources = _read_sources(path)
    if "issues.json" not in sources:
        raise ImportRefused(
            f"{path.name} has no issues.json: a GitHub export holds issues.json "
            "(and optionally comments.json, labels.json, milestones.json)."
        )
    data = ImportData(kind="github")
    seen: dict[int, str] = {}
    for index, value in enumerate(_array("issues.json", sources["issues.json"]), 1):
        issue = _issue(index, value)
        number = value["number"]
        if number in seen:
            raise ImportRefused(
                f"issues.json record {index} (#{number}): number #{number} is also {seen[number]}"
            )
        seen[number] = f"record {index}"
        if isinstance(issue, Skipped):
            data.skipped.append(issue)
        else:
            data.issues.append(issue)
    data.issues.sort(key=lambda issue: issue.external_number or 0)  # GitHub's order
    by_number = {issue.external_number: issue for issue in data.issues}
    if "comments.json" in sources:
        for index, value in enumerate(_array("comments.json", sources["comments.json"]), 1):
            number, comment = _comment(index, value)
            issue = by_number.get(number)
            if issue is not None:
                issue.comments.append(comment)
            else:
                data.skipped.append(
                    Skipped(
                        f"comments.json record {index}",
                        f"a comment on pull request #{number}"
                        if number in seen
                        else f"its issue #{number} is not in issues.json",
                    )
                )
        for issue in data.issues:
            issue.comments.sort(key=lambda comment: comment.created_at)
    if "labels.json" in sources:
        data.labels = [
            _label(index, value)
            for index, value in enumerate(_array("labels.json", sources["labels.json"]), 1)
        ]
    if "milestones.json" in sources:
        data.milestones = [
            _milestone(index, value)
            for index, value in enumerate(_array("milestones.json", sources["milestones.json"]), 1)
        ]
    return data
