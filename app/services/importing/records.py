"""The form every export is read into and checked in before anything is written."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from app.errors import Invalid
from app.models.issue import StatusCategory


class ImportRefused(Invalid):
    """The export cannot be imported: broken, the wrong format, or a record that does not
    check. The message names the file and record, or the CSV line."""


@dataclass(frozen=True)
class PersonRef:
    """Someone the export names: by login (GitHub, a Jira user name) and/or address."""

    login: str = ""
    email: str = ""
    name: str = ""

    @property
    def identity(self) -> str:
        return (self.email or self.login or self.name).lower()


@dataclass
class CommentRecord:
    author: PersonRef | None
    body: str
    created_at: datetime


@dataclass
class IssueRecord:
    """One issue to import. `status_name` names a workflow status (Jira); when it is None the
    issue goes to the first status of `category` (GitHub's open/closed)."""

    where: str  # how errors and the summary name it: 'issues.json record 17 (#23)', 'line 42'
    external_key: str  # "#23", "ABC-123"
    title: str
    description: str = ""
    status_name: str | None = None
    category: StatusCategory = StatusCategory.TODO
    type: str | None = None  # an IssueType value, or None when the export's was unknown
    priority: str | None = None
    source_type: str = ""
    source_priority: str = ""
    reporter: PersonRef | None = None
    assignee: PersonRef | None = None
    labels: list[str] = field(default_factory=list)
    milestone: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    closed_at: datetime | None = None
    comments: list[CommentRecord] = field(default_factory=list)
    # GitHub's number, for rewriting #12 references.
    external_number: int | None = None


@dataclass
class LabelRecord:
    name: str
    color: str = "#6b7280"


@dataclass
class MilestoneRecord:
    title: str
    description: str = ""
    due_date: date | None = None
    closed_at: datetime | None = None


@dataclass
class Skipped:
    where: str
    reason: str


@dataclass
class ImportData:
    """A whole export, checked: what to write, and what was left out and why."""

    kind: str
    issues: list[IssueRecord] = field(default_factory=list)
    labels: list[LabelRecord] = field(default_factory=list)
    milestones: list[MilestoneRecord] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    # Values the app has no place for, reported once each ("type: Epic" -> task).
    unknown_values: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.issues)
