"""What people and scripts may ask for: the input models that validate both the API's bodies and
the pages' forms, so that one bad value gets one answer wherever it was typed."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from app.models import LARGEST_ID, IssueType, Priority, RelationType, Role
from app.models.milestone import TITLE_MAX as MILESTONE_TITLE_MAX
from app.models.project import KEY_MAX_LENGTH
from app.services import comments, issues, milestones, projects
from app.services.issues import IssueChanges
from app.services.text import DESCRIPTION_MAX

Id = Annotated[int, Field(ge=1, le=LARGEST_ID)]
Title = Annotated[str, Field(max_length=issues.TITLE_MAX)]
Description = Annotated[str, Field(max_length=DESCRIPTION_MAX)]
ProjectName = Annotated[str, Field(max_length=projects.NAME_MAX)]
ProjectDescription = Annotated[str, Field(max_length=projects.DESCRIPTION_MAX)]
LabelIds = Annotated[list[Id], Field(max_length=50)]
# An issue's key, such as WEB-12 (the services say whether it names one).
IssueKey = Annotated[str, Field(max_length=40, examples=["WEB-12"])]
Estimate = Annotated[int, Field(ge=0, le=milestones.ESTIMATE_MAX)]
# The models' enums, given as their values: JSON has text, not enum members.
IssueTypeValue = Annotated[IssueType, Field(strict=False)]
PriorityValue = Annotated[Priority, Field(strict=False)]
RoleValue = Annotated[Role, Field(strict=False)]
RelationTypeValue = Annotated[RelationType, Field(strict=False)]


def _date_text(value: Any) -> Any:
    # JSON has no dates: only "YYYY-MM-DD" text is one (lax pydantic would take numbers too).
    if not isinstance(value, str | date):
        raise ValueError("A date is written YYYY-MM-DD.")
    return value


Day = Annotated[date, Field(strict=False), BeforeValidator(_date_text)]


def _has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(item) for item in value)
    return False


class Body(BaseModel):
    """An input: strict types (no "1" for 1; a form, whose values are all text, is read
    laxly), unknown fields refused, and text that no database can store (JSON's "\\ud800"
    escapes decode to lone surrogates) refused as invalid rather than a 500."""

    model_config = ConfigDict(extra="forbid", strict=True)

    @model_validator(mode="before")
    @classmethod
    def _storable_text(cls, data: Any) -> Any:
        if _has_lone_surrogate(data):
            raise ValueError("Text must be valid Unicode (no lone surrogates).")
        return data


def problems(error: ValidationError) -> list[tuple[str | None, str]]:
    """What pydantic refused, as (field, message): the field dotted (`label_ids.3`), None when
    the fault is the input as a whole. The API answers with the first; a form shows each."""
    found = []
    for problem in error.errors():
        field = ".".join(str(part) for part in problem.get("loc", ())) or None
        found.append((field, str(problem.get("msg", "Invalid value."))))
    return found


# --- Projects ---------------------------------------------------------------------------------


class ProjectCreate(Body):
    key: Annotated[str, Field(max_length=KEY_MAX_LENGTH)]
    name: ProjectName
    description: ProjectDescription = ""
    is_public: bool = False


class ProjectUpdate(Body):
    """Fields left out are not changed."""

    name: ProjectName | None = None
    description: ProjectDescription | None = None
    is_public: bool | None = None
    archived: bool | None = None


class MemberAdd(Body):
    email: Annotated[str, Field(max_length=320)]
    role: RoleValue


class MemberUpdate(Body):
    role: RoleValue


class LabelIn(Body):
    name: Annotated[str, Field(max_length=projects.LABEL_NAME_MAX)]
    color: Annotated[str, Field(max_length=7, examples=["#3b82f6"])]


# --- Issues -----------------------------------------------------------------------------------


class IssueCreate(Body):
    title: Title
    description: Description = ""
    type: IssueTypeValue = IssueType.TASK
    priority: PriorityValue = Priority.NONE
    status_id: Id | None = None
    assignee_id: Id | None = None
    label_ids: LabelIds = []
    due_date: Day | None = None
    parent: IssueKey | None = None  # makes it a sub-issue of that issue (same project)
    milestone_id: Id | None = None
    estimate: Estimate | None = None


class IssueUpdate(Body):
    """Fields left out are not changed; `assignee_id`, `due_date` and `parent` may be null to
    clear them."""

    title: Title | None = None
    description: Description | None = None
    type: IssueTypeValue | None = None
    priority: PriorityValue | None = None
    status_id: Id | None = None
    assignee_id: Id | None = None
    label_ids: LabelIds | None = None
    due_date: Day | None = None
    parent: IssueKey | None = None
    milestone_id: Id | None = None
    estimate: Estimate | None = None

    def changes(self) -> IssueChanges:
        """The edit asked for, as the service takes it."""
        changes = IssueChanges(
            title=self.title,
            description=self.description,
            type=self.type,
            priority=self.priority,
            status_id=self.status_id,
            label_ids=self.label_ids,
        )
        if "assignee_id" in self.model_fields_set:
            changes.assignee_id = self.assignee_id
        if "due_date" in self.model_fields_set:
            changes.due_date = self.due_date
        if "parent" in self.model_fields_set:
            changes.parent = self.parent or ""
        for name in ("milestone_id", "estimate"):  # null clears them
            if name in self.model_fields_set:
                setattr(changes, name, getattr(self, name))
        return changes


class IssueMove(Body):
    """Move the card into `status_id`, just above the issue `before_id` (null: to the bottom)."""

    status_id: Id
    before_id: Id | None = None


class BulkUpdate(Body):
    """The same change to several issues of the project, all or nothing."""

    # At least one: the service says so, in words a person selecting issues understands.
    issue_ids: Annotated[list[Id], Field(max_length=issues.BULK_MAX)]
    status_id: Id | None = None
    priority: PriorityValue | None = None
    assignee_id: Id | None = None
    label_ids: LabelIds | None = None
    milestone_id: Id | None = None

    def changes(self) -> IssueChanges:
        """The change asked for, as the service takes it."""
        changes = IssueChanges(
            status_id=self.status_id, priority=self.priority, label_ids=self.label_ids
        )
        if "assignee_id" in self.model_fields_set:
            changes.assignee_id = self.assignee_id
        if "milestone_id" in self.model_fields_set:
            changes.milestone_id = self.milestone_id
        return changes


# --- Relations --------------------------------------------------------------------------------


class RelationIn(Body):
    """Relate the issue to `issue` (a key, any project the caller can read). `close` closes an
    issue marked as duplicating another, in the same change."""

    type: RelationTypeValue
    issue: IssueKey
    close: bool = False


# --- Comments ---------------------------------------------------------------------------------


class CommentIn(Body):
    body: Annotated[str, Field(max_length=comments.BODY_MAX)]


# --- Milestones -------------------------------------------------------------------------------


class MilestoneCreate(Body):
    title: Annotated[str, Field(max_length=MILESTONE_TITLE_MAX)]
    description: Description = ""
    due_date: Day | None = None


class MilestoneUpdate(Body):
    """Fields left out are not changed; `due_date` may be null to clear it."""

    title: Annotated[str, Field(max_length=MILESTONE_TITLE_MAX)] | None = None
    description: Description | None = None
    due_date: Day | None = None

    def changes(self) -> dict[str, Any]:
        """The service's keyword arguments for the fields given."""
        return {name: getattr(self, name) for name in self.model_fields_set}


class MilestoneClose(Body):
    """Close the milestone; its open issues go to the open milestone `move_to`, or to none when
    it is null. Left out, a milestone with open issues is not closed (400 says how many)."""

    move_to: Id | None = None

    def target(self) -> int | None:
        return self.move_to if "move_to" in self.model_fields_set else milestones.UNCHANGED
