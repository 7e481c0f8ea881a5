"""Issues: search, read by key, create, update with If-Match, move, bulk update; comments and an
issue's activity."""

from __future__ import annotations

from quart import Blueprint, Response, request, url_for
from quart_schema import document_response, validate_querystring, validate_request

from app.api.auth import acting_user, caller
from app.api.pagination import after_id, id_cursor, link_header, next_link
from app.api.projects import ID, Answer, activity_page, project_for
from app.api.schemas import (
    ActivityArgs,
    ActivityList,
    BulkResult,
    CommentList,
    CommentOut,
    IssueList,
    IssueOut,
    IssueSearchArgs,
    PageArgs,
    StaleOut,
    comment_out,
    issue_out,
)
from app.db import get_session
from app.models import Issue, User
from app.services import activity, comments, issue_views, issues, search
from app.services.inputs import BulkUpdate, CommentIn, IssueCreate, IssueMove, IssueUpdate
from app.services.issues import StaleEdit

bp = Blueprint("issues", __name__)

# A move without If-Match applies to whatever is current; a concurrent edit between reading
# the version and moving is retried this many times.
MOVE_ATTEMPTS = 3


def _etag(issue: Issue) -> dict[str, str]:
    return {"ETag": f'"{issue.version}"'}


def _expected_version() -> int | None:
    """The version If-Match names: None without one (or with *), 0 for a tag that cannot be a
    version (it matches none)."""
    if "If-Match" not in request.headers:
        return None
    tags = request.if_match
    if tags.star_tag:
        return None
    for tag in tags.as_set(include_weak=True):
        if tag.isascii() and tag.isdigit() and len(tag) <= 9:
            return int(tag)
    return 0


async def _issue(key: str) -> Issue:
    return await issue_views.get_issue_by_key(get_session(), caller(), key)


async def _stale_answer(issue_id: int, refusal: StaleEdit) -> Answer:
    """412 with the issue as it is now, so that the client can merge and retry."""
    current = await issue_views.get_issue_by_id(get_session(), caller(), issue_id)
    body = StaleOut(
        error={"code": "precondition_failed", "message": refusal.message, "field": None},
        issue=issue_out(current),
    )
    return body, 412, _etag(current)


# --- Lists and creating -----------------------------------------------------------------------


@bp.get("/projects/<project_key:key>/issues")
@validate_querystring(IssueSearchArgs)
@document_response(IssueList, 200)
async def list_issues(key: str, query_args: IssueSearchArgs) -> Answer:
    """The project's issues matching `q` (the search box's language, such as `is:open
    label:bug sort:created-asc`), a page at a time."""
    project = await project_for(key)
    page = await search.search_issues(
        get_session(),
        caller(),
        query_args.q,
        project=project,
        after=query_args.after,
        limit=query_args.limit,
    )
    next_url = next_link(after=page.next_cursor) if page.next_cursor else None
    body = IssueList(items=[issue_out(issue) for issue in page.issues], next=next_url)
    return body, 200, link_header(next_url)


@bp.post("/projects/<project_key:key>/issues")
@validate_request(IssueCreate)
@document_response(IssueOut, 201)
async def create_issue(key: str, data: IssueCreate) -> Answer:
    """Create an issue (members)."""
    project = await project_for(key)
    created = await issues.create_issue(
        get_session(), acting_user(), project.id, **data.model_dump()
    )
    issue = await issue_views.get_issue_by_id(get_session(), caller(), created.id)
    headers = {"Location": url_for("api.issues.show_issue", key=issue.key), **_etag(issue)}
    return issue_out(issue), 201, headers


@bp.post("/projects/<project_key:key>/issues/bulk")
@validate_request(BulkUpdate)
@document_response(BulkResult, 200)
async def bulk_update(key: str, data: BulkUpdate) -> BulkResult:
    """Apply one change to several issues of the project: all or nothing (members)."""
    project = await project_for(key)
    changed = await issues.bulk_update(
        get_session(), acting_user(), project.id, data.issue_ids, data.changes()
    )
    return BulkResult(changed=changed)


# --- One issue --------------------------------------------------------------------------------


@bp.get("/issues/<issue_key:key>")
@document_response(IssueOut, 200)
async def show_issue(key: str) -> Answer:
    """One issue by its key, such as WEB-12; the ETag is its version."""
    issue = await _issue(key)
    return issue_out(issue), 200, _etag(issue)


@bp.patch("/issues/<issue_key:key>")
@validate_request(IssueUpdate)
@document_response(IssueOut, 200)
@document_response(StaleOut, 412)
async def update_issue(key: str, data: IssueUpdate) -> Answer:
    """Change any fields (members). With `If-Match: "<version>"` the change applies only to
    that version, else 412 with the current issue; without If-Match it applies to the current."""
    issue = await _issue(key)
    issue_id = issue.id
    try:
        await issues.update_issue(
            get_session(),
            acting_user(),
            issue_id,
            data.changes(),
            expected_version=_expected_version(),
        )
    except StaleEdit as refusal:
        return await _stale_answer(issue_id, refusal)
    updated = await issue_views.get_issue_by_id(get_session(), caller(), issue_id)
    return issue_out(updated), 200, _etag(updated)


@bp.post("/issues/<issue_key:key>/move")
@validate_request(IssueMove)
@document_response(IssueOut, 200)
@document_response(StaleOut, 412)
async def move_issue(key: str, data: IssueMove) -> Answer:
    """Move the card on the board (members), like a drag: If-Match as for updates."""
    issue = await _issue(key)
    issue_id, version = issue.id, issue.version
    expected = _expected_version()
    user: User = acting_user()
    for attempt in range(MOVE_ATTEMPTS):
        try:
            await issues.move_issue(
                get_session(),
                user,
                issue_id,
                status_id=data.status_id,
                before_id=data.before_id,
                expected_version=expected if expected is not None else version,
            )
            break
        except StaleEdit as refusal:
            if expected is not None or attempt == MOVE_ATTEMPTS - 1:
                return await _stale_answer(issue_id, refusal)
            version = (await issue_views.get_issue_by_id(get_session(), caller(), issue_id)).version
    moved = await issue_views.get_issue_by_id(get_session(), caller(), issue_id)
    return issue_out(moved), 200, _etag(moved)


# --- Comments ---------------------------------------------------------------------------------


@bp.get("/issues/<issue_key:key>/comments")
@validate_querystring(PageArgs)
@document_response(CommentList, 200)
async def list_comments(key: str, query_args: PageArgs) -> Answer:
    """The issue's comments, oldest first."""
    issue = await _issue(key)
    found, more = await comments.list_comments(
        get_session(),
        caller(),
        issue.id,
        after_id=after_id(query_args.after),
        limit=query_args.limit,
    )
    next_url = next_link(after=id_cursor(found[-1].id)) if more else None
    body = CommentList(items=[comment_out(c, c.author) for c in found], next=next_url)
    return body, 200, link_header(next_url)


@bp.post("/issues/<issue_key:key>/comments")
@validate_request(CommentIn)
@document_response(CommentOut, 201)
async def add_comment(key: str, data: CommentIn) -> tuple[CommentOut, int]:
    """Comment (Markdown; @mentions notify) (members)."""
    issue = await _issue(key)
    user = acting_user()
    comment = await comments.add_comment(get_session(), user, issue.id, data.body)
    return comment_out(comment, user), 201


@bp.patch(f"/issues/<issue_key:key>/comments/<{ID}:comment_id>")
@validate_request(CommentIn)
@document_response(CommentOut, 200)
async def edit_comment(key: str, comment_id: int, data: CommentIn) -> CommentOut:
    """Edit your own comment."""
    issue = await _issue(key)
    await comments.get_comment(get_session(), caller(), issue.id, comment_id)
    user = acting_user()
    comment = await comments.edit_comment(get_session(), user, comment_id, data.body)
    return comment_out(comment, user)


@bp.delete(f"/issues/<issue_key:key>/comments/<{ID}:comment_id>")
async def delete_comment(key: str, comment_id: int) -> Response:
    """Delete your own comment; the timeline keeps that it was deleted."""
    issue = await _issue(key)
    await comments.get_comment(get_session(), caller(), issue.id, comment_id)
    await comments.delete_comment(get_session(), acting_user(), comment_id)
    return Response(status=204)


@bp.get("/issues/<issue_key:key>/activity")
@validate_querystring(ActivityArgs)
@document_response(ActivityList, 200)
async def issue_activity(key: str, query_args: ActivityArgs) -> Answer:
    """The issue's changes after sequence `after` (its project's numbering), oldest first."""
    issue = await _issue(key)
    rows = await activity.activity_since(
        get_session(), issue.project_id, query_args.after, issue_id=issue.id, limit=query_args.limit
    )
    return activity_page(rows, query_args)
