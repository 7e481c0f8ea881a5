"""What the API writes: pydantic models of its answers (with the input models of
app.services.inputs, they are the OpenAPI document) and the conversions from the app's models."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AliasPath, BaseModel, ConfigDict, Field

from app.models import (
    LARGEST_ID,
    Activity,
    ApiToken,
    AuditEvent,
    Comment,
    Issue,
    IssueType,
    Label,
    Priority,
    Project,
    RelationType,
    Role,
    StatusCategory,
    TokenScope,
    User,
    WorkflowStatus,
)
from app.services.projects import Member
from app.services.relation_views import IssueLink, IssueRelations


class Out(BaseModel):
    """An answer, read from the attributes of the app's objects."""

    model_config = ConfigDict(from_attributes=True)


# --- Errors -----------------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorOut(BaseModel):
    """The request was refused; `error.field` names the field at fault when there is one."""

    error: ErrorDetail


# --- People and tokens ------------------------------------------------------------------------


class UserOut(Out):
    id: int
    handle: str
    display_name: str


class MeOut(UserOut):
    """The caller."""

    email: str
    email_verified: bool
    auth: Literal["token", "session"]
    token_scope: TokenScope | None = None


def user_out(user: User | None) -> UserOut | None:
    return None if user is None else UserOut.model_validate(user)


def me_out(user: User, token: ApiToken | None) -> MeOut:
    return MeOut(
        id=user.id,
        handle=user.handle,
        display_name=user.display_name,
        email=user.email,
        email_verified=user.email_verified_at is not None,
        auth="token" if token else "session",
        token_scope=token.scope if token else None,
    )


class AuditEventOut(BaseModel):
    """One security event of the caller's account (decision 0021)."""

    id: int
    at: datetime
    action: Annotated[str, Field(examples=["login.succeeded"])]
    description: Annotated[str, Field(description="The event in plain words.")]
    actor_email: str
    subject_email: str
    client_address: str
    user_agent: str
    detail: dict[str, Any]


class AuditEventList(BaseModel):
    items: list[AuditEventOut]
    next: str | None


def audit_event_out(event: AuditEvent, description: str) -> AuditEventOut:
    return AuditEventOut(
        id=event.id,
        at=event.at,
        action=event.action,
        description=description,
        actor_email=event.actor_email,
        subject_email=event.subject_email,
        client_address=event.client_address,
        user_agent=event.user_agent,
        detail=event.detail or {},
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


class MemberOut(Out):
    """A member of a project and their role."""

    user: UserOut
    role: Role


class MemberList(BaseModel):
    items: list[MemberOut]


def member_out(member: Member) -> MemberOut:
    return MemberOut.model_validate(member)


class LabelOut(Out):
    """A label of a project."""

    id: int
    name: str
    color: str


class LabelList(BaseModel):
    items: list[LabelOut]


def label_out(label: Label) -> LabelOut:
    return LabelOut.model_validate(label)


class StatusOut(Out):
    """A status of the project's workflow: a column of its board."""

    id: int
    name: str
    category: StatusCategory
    position: int


class StatusList(BaseModel):
    items: list[StatusOut]


def status_out(status: WorkflowStatus) -> StatusOut:
    return StatusOut.model_validate(status)


# --- Issues -----------------------------------------------------------------------------------


class IssueOut(Out):
    """An issue. `version` goes up with every change; it is also the ETag."""

    id: int
    key: str
    project: Annotated[str, Field(validation_alias=AliasPath("project", "key"))]
    number: int
    title: str
    description: str
    type: IssueType
    priority: Priority
    status: StatusOut
    assignee: UserOut | None
    reporter: UserOut | None
    labels: list[LabelOut]
    due_date: date | None
    # Filled in by issue_out (Issue.parent is an issue; the key needs its project's).
    parent: str | None = Field(
        None, validation_alias="parent_key", description="The parent's key, for a sub-issue."
    )
    milestone_id: int | None  # see /projects/{key}/milestones
    estimate: int | None  # story points
    version: int
    created_at: datetime
    updated_at: datetime


class IssueList(BaseModel):
    """A page of issues; `next` is the URL of the next page, null on the last."""

    items: list[IssueOut]
    next: str | None


class BulkResult(BaseModel):
    """How many issues changed."""

    changed: int


class StaleOut(ErrorOut):
    """The issue changed since the version in If-Match: nothing was saved. `issue` is the
    current state."""

    issue: IssueOut


def issue_out(issue: Issue) -> IssueOut:
    """Needs the issue's project, status, assignee, reporter, labels and parent loaded."""
    answer = IssueOut.model_validate(issue)
    if issue.parent is not None:  # same project: its key is the project's key and its number
        answer.parent = f"{issue.project.key}-{issue.parent.number}"
    return answer


# --- Relations --------------------------------------------------------------------------------


class RelatedIssueOut(BaseModel):
    """The other issue of a relation, or a sub-issue or parent."""

    key: str
    title: str
    status: str
    closed: bool


class RelationOut(BaseModel):
    """A relation seen from this issue: `type` is blocks, blocked_by, duplicates,
    duplicated_by or relates_to."""

    id: int
    type: RelationType
    issue: RelatedIssueOut


class RelationList(BaseModel):
    """The issue's relations to issues the caller can read (others are not listed), its parent
    and its sub-issues with their progress."""

    items: list[RelationOut]
    parent: RelatedIssueOut | None
    sub_issues: list[RelatedIssueOut]
    sub_issues_done: int
    blocked: bool


def related_out(link: IssueLink) -> RelatedIssueOut:
    return RelatedIssueOut(key=link.key, title=link.title, status=link.status, closed=link.done)


def relation_list(found: IssueRelations) -> RelationList:
    return RelationList(
        items=[
            RelationOut(id=r.id, type=r.type, issue=related_out(r.issue)) for r in found.relations
        ],
        parent=related_out(found.parent) if found.parent else None,
        sub_issues=[related_out(link) for link in found.sub_issues],
        sub_issues_done=found.done_count,
        blocked=found.blocked,
    )


# --- Comments and activity --------------------------------------------------------------------


class CommentOut(Out):
    """A comment (Markdown)."""

    id: int
    body: str
    author: UserOut | None
    created_at: datetime
    edited_at: datetime | None


class CommentList(BaseModel):
    items: list[CommentOut]
    next: str | None


def comment_out(comment: Comment, author: User | None) -> CommentOut:
    return CommentOut(
        id=comment.id,
        body=comment.body,
        author=user_out(author),
        created_at=comment.created_at,
        edited_at=comment.edited_at,
    )


class ActivityOut(Out):
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
    return ActivityOut.model_validate(row)


# --- Query strings ----------------------------------------------------------------------------


class PageArgs(BaseModel):
    after: Annotated[str, Field(max_length=200)] | None = None
    limit: Annotated[int, Field(ge=1, le=100)] = 50


class IssueSearchArgs(PageArgs):
    q: Annotated[str, Field(max_length=500, description="The search box's language.")] = ""


class RelationArgs(BaseModel):
    """Which relation: its type as seen from this issue, and the other issue's key."""

    type: RelationType
    issue: Annotated[str, Field(max_length=40, examples=["WEB-3"])]


class ActivityArgs(BaseModel):
    after: Annotated[int, Field(ge=0, le=LARGEST_ID, description="A sequence number.")] = 0
    limit: Annotated[int, Field(ge=1, le=500)] = 100
