"""What the API reads and writes: pydantic models (they are the OpenAPI document) and the
conversions from the app's models."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from app.models import Activity, ApiToken, Comment, Issue, Label, Project, User, WorkflowStatus
from app.services.projects import Member

# Ids and versions are 32-bit integers in the database: larger numbers name nothing.
Id = Annotated[int, Field(ge=1, le=2**31 - 1)]
Text = Annotated[str, Field(max_length=50_000)]
Name = Annotated[str, Field(max_length=200)]
RoleName = Literal["owner", "admin", "member", "viewer"]
IssueTypeName = Literal["bug", "feature", "task"]
PriorityName = Literal["urgent", "high", "medium", "low", "none"]


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
    """A request body: strict types (no "1" for 1), unknown fields refused, and text that no
    database can store (JSON's "\\ud800" escapes decode to lone surrogates) refused as invalid
    rather than a 500."""

    model_config = ConfigDict(extra="forbid", strict=True)

    @model_validator(mode="before")
    @classmethod
    def _storable_text(cls, data: Any) -> Any:
        if _has_lone_surrogate(data):
            raise ValueError("Text must be valid Unicode (no lone surrogates).")
        return data


# --- Errors -----------------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorOut(BaseModel):
    """The request was refused; `error.field` names the field at fault when there is one."""

    error: ErrorDetail


# --- People and tokens ------------------------------------------------------------------------


class UserOut(BaseModel):
    id: int
    handle: str
    display_name: str


class MeOut(UserOut):
    """The caller."""

    email: str
    email_verified: bool
    auth: Literal["token", "session"]
    token_scope: Literal["read", "write"] | None = None


def user_out(user: User | None) -> UserOut | None:
    if user is None:
        return None
    return UserOut(id=user.id, handle=user.handle, display_name=user.display_name)


def me_out(user: User, token: ApiToken | None) -> MeOut:
    return MeOut(
        id=user.id,
        handle=user.handle,
        display_name=user.display_name,
        email=user.email,
        email_verified=user.email_verified_at is not None,
        auth="token" if token else "session",
        token_scope=token.scope if token else None,  # type: ignore[arg-type]
    )


# --- Projects ---------------------------------------------------------------------------------


class ProjectOut(BaseModel):
    """A project."""

    id: int
    key: str
    name: str
    description: str
    is_public: bool
    archived: bool
    created_at: datetime


class ProjectList(BaseModel):
    """A page of projects; `next` is the URL of the next page, null on the last."""

    items: list[ProjectOut]
    next: str | None


class ProjectCreate(Body):
    key: Annotated[str, Field(max_length=10)]
    name: Name
    description: Annotated[str, Field(max_length=5000)] = ""
    is_public: bool = False


class ProjectUpdate(Body):
    """Fields left out are not changed."""

    name: Name | None = None
    description: Annotated[str, Field(max_length=5000)] | None = None
    is_public: bool | None = None
    archived: bool | None = None


def project_out(project: Project) -> ProjectOut:
    return ProjectOut(
        id=project.id,
        key=project.key,
        name=project.name,
        description=project.description,
        is_public=project.is_public,
        archived=project.archived_at is not None,
        created_at=project.created_at,
    )


class MemberOut(BaseModel):
    """A member of a project and their role."""

    user: UserOut
    role: RoleName


class MemberList(BaseModel):
    items: list[MemberOut]


class MemberAdd(Body):
    email: Annotated[str, Field(max_length=320)]
    role: RoleName


class MemberUpdate(Body):
    role: RoleName


def member_out(member: Member) -> MemberOut:
    user = user_out(member.user)
    assert user is not None
    return MemberOut(user=user, role=member.role.value)  # type: ignore[arg-type]


class LabelOut(BaseModel):
    """A label of a project."""

    id: int
    name: str
    color: str


class LabelList(BaseModel):
    items: list[LabelOut]


class LabelIn(Body):
    name: Annotated[str, Field(max_length=50)]
    color: Annotated[str, Field(max_length=7, examples=["#3b82f6"])]


def label_out(label: Label) -> LabelOut:
    return LabelOut(id=label.id, name=label.name, color=label.color)


class StatusOut(BaseModel):
    """A status of the project's workflow: a column of its board."""

    id: int
    name: str
    category: Literal["todo", "in_progress", "done"]
    position: int


class StatusList(BaseModel):
    items: list[StatusOut]


def status_out(status: WorkflowStatus) -> StatusOut:
    return StatusOut(
        id=status.id,
        name=status.name,
        category=status.category,  # type: ignore[arg-type]
        position=status.position,
    )


# --- Issues -----------------------------------------------------------------------------------


class IssueOut(BaseModel):
    """An issue. `version` goes up with every change; it is also the ETag."""

    id: int
    key: str
    project: str
    number: int
    title: str
    description: str
    type: IssueTypeName
    priority: PriorityName
    status: StatusOut
    assignee: UserOut | None
    reporter: UserOut | None
    labels: list[LabelOut]
    due_date: date | None
    version: int
    created_at: datetime
    updated_at: datetime


class IssueList(BaseModel):
    """A page of issues; `next` is the URL of the next page, null on the last."""

    items: list[IssueOut]
    next: str | None


class IssueCreate(Body):
    title: Name
    description: Text = ""
    type: IssueTypeName = "task"
    priority: PriorityName = "none"
    status_id: Id | None = None
    assignee_id: Id | None = None
    label_ids: Annotated[list[Id], Field(max_length=50)] = []
    due_date: Day | None = None


class IssueUpdate(Body):
    """Fields left out are not changed; `assignee_id` and `due_date` may be null to clear
    them."""

    title: Name | None = None
    description: Text | None = None
    type: IssueTypeName | None = None
    priority: PriorityName | None = None
    status_id: Id | None = None
    assignee_id: Id | None = None
    label_ids: Annotated[list[Id], Field(max_length=50)] | None = None
    due_date: Day | None = None


class IssueMove(Body):
    """Move the card into `status_id`, just above the issue `before_id` (null: to the bottom)."""

    status_id: Id
    before_id: Id | None = None


class BulkUpdate(Body):
    """The same change to several issues of the project, all or nothing."""

    issue_ids: Annotated[list[Id], Field(min_length=1, max_length=200)]
    status_id: Id | None = None
    priority: PriorityName | None = None
    assignee_id: Id | None = None
    label_ids: Annotated[list[Id], Field(max_length=50)] | None = None


class BulkResult(BaseModel):
    """How many issues changed."""

    changed: int


class StaleOut(ErrorOut):
    """The issue changed since the version in If-Match: nothing was saved. `issue` is the
    current state."""

    issue: IssueOut


def issue_out(issue: Issue) -> IssueOut:
    """Needs the issue's project, status, assignee, reporter and labels loaded."""
    return IssueOut(
        id=issue.id,
        key=issue.key,
        project=issue.project.key,
        number=issue.number,
        title=issue.title,
        description=issue.description,
        type=issue.type,  # type: ignore[arg-type]
        priority=issue.priority,  # type: ignore[arg-type]
        status=status_out(issue.status),
        assignee=user_out(issue.assignee),
        reporter=user_out(issue.reporter),
        labels=[label_out(label) for label in issue.labels],
        due_date=issue.due_date,
        version=issue.version,
        created_at=issue.created_at,
        updated_at=issue.updated_at,
    )


# --- Comments and activity --------------------------------------------------------------------


class CommentOut(BaseModel):
    """A comment (Markdown)."""

    id: int
    body: str
    author: UserOut | None
    created_at: datetime
    edited_at: datetime | None


class CommentList(BaseModel):
    items: list[CommentOut]
    next: str | None


class CommentIn(Body):
    body: Annotated[str, Field(max_length=20_000)]


def comment_out(comment: Comment, author: User | None) -> CommentOut:
    return CommentOut(
        id=comment.id,
        body=comment.body,
        author=user_out(author),
        created_at=comment.created_at,
        edited_at=comment.edited_at,
    )


class ActivityOut(BaseModel):
    """One change, numbered by `seq` (gap-free per project, in commit order)."""

    seq: int
    kind: str
    issue_id: int | None
    actor_id: int | None
    payload: dict[str, Any]
    created_at: datetime


class ActivityList(BaseModel):
    """Changes after the `after` sequence, oldest first. Ask again with after=`last_seq` to
    catch up; `next` is set while more are waiting."""

    items: list[ActivityOut]
    last_seq: int
    next: str | None


def activity_out(row: Activity) -> ActivityOut:
    return ActivityOut(
        seq=row.seq,
        kind=row.kind,
        issue_id=row.issue_id,
        actor_id=row.actor_id,
        payload=row.payload,
        created_at=row.created_at,
    )


# --- Query strings ----------------------------------------------------------------------------


class PageArgs(BaseModel):
    after: Annotated[str, Field(max_length=200)] | None = None
    limit: Annotated[int, Field(ge=1, le=100)] = 50


class IssueSearchArgs(PageArgs):
    q: Annotated[str, Field(max_length=500, description="The search box's language.")] = ""


class ActivityArgs(BaseModel):
    after: Annotated[int, Field(ge=0, le=2**31 - 1, description="A sequence number.")] = 0
    limit: Annotated[int, Field(ge=1, le=500)] = 100
