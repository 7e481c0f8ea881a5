"""Sub-issues and relations: a parent in the same project and never a cycle, relations between
any two issues the person can read, and what pages, cards and searches show of them
(decision 0018)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    and_,
    func,
    literal,
    or_,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased, joinedload

from app.errors import Invalid, NotFound
from app.models import (
    Issue,
    IssueRelation,
    Project,
    RelationKind,
    RelationType,
    StatusCategory,
    User,
    WorkflowStatus,
)
from app.models.issue import POSITION_STEP
from app.models.relation import seen_from
from app.services import notifications
from app.services.access import writable_project
from app.services.activity import record_activity
from app.services.relation_views import readable_projects, split_key
from app.services.transaction import use_case

# pg_advisory_xact_lock(namespace, project id): re-parenting in one project is serialised, so
# two moves that would together make a cycle cannot both pass the check (each sees the other's
# committed parent once it holds the lock).
_PARENT_LOCK_NAMESPACE = 18_0018
_DONE = StatusCategory.DONE.value


# --- Naming issues ----------------------------------------------------------------------------


async def _issue_named(
    session: AsyncSession, viewer: User | None, key: str, *, field_name: str
) -> Issue:
    """The issue called `key` (with its project and status) if `viewer` may read it, else
    Invalid: an issue one may not read is answered as one that does not exist."""
    parts = split_key(key)
    missing = Invalid(f"There is no issue {key.strip()[:40]!r} that you can see.", field=field_name)
    if parts is None:
        raise missing
    issue = await session.scalar(
        select(Issue)
        .join(Project, Project.id == Issue.project_id)
        .where(Project.key == parts[0], Issue.number == parts[1])
        .where(Issue.project_id.in_(readable_projects(viewer)))
        .options(
            joinedload(Issue.project, innerjoin=True), joinedload(Issue.status, innerjoin=True)
        )
        .execution_options(populate_existing=True)
    )
    if issue is None:
        raise missing
    return issue


# --- Parents ----------------------------------------------------------------------------------


async def parent_named(
    session: AsyncSession, actor: User, project: Project, parent_key: str | None
) -> Issue | None:
    """The parent a new or moved issue of `project` asks for: an issue of the same project,
    else Invalid (field "parent")."""
    if parent_key is None or not parent_key.strip():
        return None
    parent = await _issue_named(session, actor, parent_key, field_name="parent")
    if parent.project_id != project.id:
        raise Invalid("A sub-issue's parent must be in the same project.", field="parent")
    return parent


async def _is_ancestor_or_self(session: AsyncSession, issue_id: int, of_issue_id: int) -> bool:
    """Whether `issue_id` is `of_issue_id` or one of its ancestors (one recursive query)."""
    ancestors = select(Issue.id, Issue.parent_id).where(Issue.id == of_issue_id).cte(recursive=True)
    up = aliased(Issue)
    ancestors = ancestors.union(
        select(up.id, up.parent_id).join(ancestors, up.id == ancestors.c.parent_id)
    )
    found = await session.scalar(
        select(literal(1)).select_from(ancestors).where(ancestors.c.id == issue_id).limit(1)
    )
    return found is not None


async def change_parent(
    session: AsyncSession, actor: User, issue: Issue, parent_key: str | None
) -> tuple[str, str] | None:
    """Give `issue` (locked by the caller, with its project) the parent `parent_key` (None or
    "": none), in the caller's transaction; records a `subissue.*` event on the old and the new
    parent. Returns (old parent's key, new parent's key), "" for none, or None when nothing
    changed. Raises Invalid (field "parent") for another project's issue, the issue itself or
    one of its own sub-issues (a cycle)."""
    parent = await parent_named(session, actor, issue.project, parent_key)
    new_id = parent.id if parent else None
    if new_id == issue.parent_id:
        return None
    if parent is not None:
        if parent.id == issue.id:
            raise Invalid("An issue cannot be its own parent.", field="parent")
        if session.bind.dialect.name == "postgresql":
            await session.execute(
                text("SELECT pg_advisory_xact_lock(:namespace, :project_id)"),
                {"namespace": _PARENT_LOCK_NAMESPACE, "project_id": issue.project_id},
            )
        if await _is_ancestor_or_self(session, issue.id, parent.id):
            raise Invalid(
                f"{parent.key} is a sub-issue of {issue.key}: making it the parent would make a "
                "cycle.",
                field="parent",
            )
    old = await _issue_with_project(session, issue.parent_id) if issue.parent_id else None
    issue.parent_id = new_id
    if old is not None:
        await _sub_issue_event(session, actor, old, "subissue.removed", issue)
    if parent is not None:
        await _sub_issue_event(session, actor, parent, "subissue.added", issue)
    return (old.key if old else ""), (parent.key if parent else "")


async def sub_issue_created(
    session: AsyncSession, actor: User, parent: Issue, issue: Issue
) -> None:
    """A new issue was made a sub-issue of `parent`: the parent's page and card change."""
    await _sub_issue_event(session, actor, parent, "subissue.added", issue)


async def _issue_with_project(session: AsyncSession, issue_id: int) -> Issue | None:
    return await session.scalar(
        select(Issue)
        .where(Issue.id == issue_id)
        .options(joinedload(Issue.project, innerjoin=True))
        .execution_options(populate_existing=True)
    )


async def _sub_issue_event(
    session: AsyncSession, actor: User | None, parent: Issue, kind: str, sub_issue: Issue
) -> None:
    # An event of the parent's own: its page (kept by its latest event, decision 0016), its
    # card and the live streams see the new progress at once. Same project: the id is no leak.
    await record_activity(
        session, parent.project, actor, kind, issue=parent, payload={"sub_issue_id": sub_issue.id}
    )


async def status_changed(
    session: AsyncSession, actor: User | None, issue: Issue, *, was_done: bool
) -> None:
    """After `issue` (with its status loaded) changed status in the caller's transaction: its
    parent's progress may have moved, and if it was closed or reopened, the issues it blocks
    gained or lost their blocked mark. Each gets an event of its own (see _sub_issue_event)."""
    if issue.parent_id is not None:
        parent = await _issue_with_project(session, issue.parent_id)
        if parent is not None:
            await _sub_issue_event(session, actor, parent, "subissue.changed", issue)
    if was_done == issue.status.is_done:
        return
    blocked = await session.scalars(
        select(Issue)
        .join(IssueRelation, IssueRelation.target_id == Issue.id)
        .where(IssueRelation.source_id == issue.id, IssueRelation.kind == RelationKind.BLOCKS)
        .options(joinedload(Issue.project, innerjoin=True))
        .order_by(Issue.id)
    )
    for other in blocked:
        # Only the blocker's id: the blocked issue's project may be read by people who may not
        # read the blocker's.
        await record_activity(
            session,
            other.project,
            actor,
            "relation.blocker_changed",
            issue=other,
            payload={"other_issue_id": issue.id},
        )


# --- Relations --------------------------------------------------------------------------------


def relation_type(value: str) -> RelationType:
    try:
        return RelationType(value)
    except ValueError:
        raise Invalid(
            f"A relation is one of: {', '.join(t.value for t in RelationType)}.", field="type"
        ) from None


async def _locked_issue(session: AsyncSession, actor: User, issue_id: int) -> Issue:
    issue = await session.scalar(
        select(Issue)
        .where(Issue.id == issue_id)
        .options(
            joinedload(Issue.project, innerjoin=True), joinedload(Issue.status, innerjoin=True)
        )
        .with_for_update(key_share=True, of=Issue)
        .execution_options(populate_existing=True)
    )
    if issue is None:
        raise NotFound("No such issue.")
    await writable_project(session, actor, issue.project_id)
    return issue


def _payload(relation: RelationType, issue: Issue, other: Issue) -> dict[str, Any]:
    """What an event on `issue` says about its relation to `other`: the other's key only when
    both are in one project (whoever reads the event may read both); else its id alone."""
    payload: dict[str, Any] = {"relation": relation.value, "other_issue_id": other.id}
    if other.project_id == issue.project_id:
        payload["other"] = other.key
    return payload


def _inverse(relation: RelationType) -> RelationType:
    kind, as_target = relation.stored
    return seen_from(kind, not as_target)


async def _record_on_both(
    session: AsyncSession,
    actor: User,
    kind: str,
    issue: Issue,
    other: Issue,
    seen: RelationType,
) -> None:
    """The activity row of a relation added or removed, on each of its two issues, each
    seeing the relation from its own side (blocks on one is blocked by on the other)."""
    for this, that, relation in ((issue, other, seen), (other, issue, _inverse(seen))):
        await record_activity(
            session, this.project, actor, kind, issue=this, payload=_payload(relation, this, that)
        )


@use_case
async def add_relation(
    session: AsyncSession,
    actor: User,
    issue_id: int,
    relation: str,
    other_key: str,
    *,
    close_duplicate: bool = False,
) -> IssueRelation:
    """Relate the issue (whose project `actor` may write) to `other_key` (any issue `actor`
    may read). Records `relation.added` on both. With `close_duplicate`, an issue marked as
    duplicating another is closed in the same commit. Raises Invalid for an unknown type, the
    issue itself, or a relation the two already have (either way round); nothing is written."""
    issue = await _locked_issue(session, actor, issue_id)  # who asks, before what they ask
    kind_seen = relation_type(relation)
    other = await _issue_named(session, actor, other_key, field_name="issue")
    if other.id == issue.id:
        raise Invalid("An issue cannot be related to itself.", field="issue")
    kind, as_target = kind_seen.stored
    source, target = (other, issue) if as_target else (issue, other)
    if kind == RelationKind.RELATES and source.id > target.id:
        source, target = target, source
    pairs = [(source.id, target.id)]
    if kind != RelationKind.RELATES:
        pairs.append((target.id, source.id))  # A blocks B and B blocks A: refused too
    existing = await session.scalar(
        select(IssueRelation).where(
            IssueRelation.kind == kind,
            or_(
                *(
                    and_(IssueRelation.source_id == s, IssueRelation.target_id == t)
                    for s, t in pairs
                )
            ),
        )
    )
    if existing is not None:
        first, second = (issue, other) if existing.source_id == issue.id else (other, issue)
        shown = seen_from(existing.kind, as_target=False)
        raise Invalid(f"{first.key} already {shown.label} {second.key}.", field="issue")
    created = IssueRelation(
        source_id=source.id, target_id=target.id, kind=kind.value, created_by_id=actor.id
    )
    try:
        async with session.begin_nested():  # the same relation added at the same moment
            session.add(created)
            await session.flush()
    except IntegrityError:
        raise Invalid(
            f"{issue.key} already {kind_seen.label} {other.key}.", field="issue"
        ) from None
    await _record_on_both(session, actor, "relation.added", issue, other, kind_seen)
    if close_duplicate and kind_seen == RelationType.DUPLICATES and not issue.status.is_done:
        await _close(session, actor, issue)
    return created


async def _close(session: AsyncSession, actor: User, issue: Issue) -> None:
    """Move the issue to its project's first done status, as an edit of its status would."""
    done = await session.scalar(
        select(WorkflowStatus)
        .where(WorkflowStatus.project_id == issue.project_id, WorkflowStatus.category == _DONE)
        .order_by(WorkflowStatus.position, WorkflowStatus.id)
        .limit(1)
    )
    if done is None:
        return  # a workflow with no done column: nothing to close into
    last = await session.scalar(
        select(func.max(Issue.position)).where(
            Issue.project_id == issue.project_id, Issue.status_id == done.id
        )
    )
    before = issue.status.name
    issue.status, issue.position = done, (last or 0) + POSITION_STEP
    await session.flush()
    activity = await record_activity(
        session,
        issue.project,
        actor,
        "issue.updated",
        issue=issue,
        payload={"version": issue.version, "changes": {"status": [before, done.name]}},
    )
    await session.flush()
    await notifications.notify(session, issue, activity, actor, status_changed=True)
    await status_changed(session, actor, issue, was_done=False)


@use_case
async def remove_relation(
    session: AsyncSession, actor: User, issue_id: int, relation_id: int
) -> None:
    """Remove one of the issue's relations (writers of its project; the other issue must be
    readable, as only then is the relation shown). Records `relation.removed` on both."""
    issue = await _locked_issue(session, actor, issue_id)
    relation = await session.get(IssueRelation, relation_id)
    if relation is None or issue.id not in (relation.source_id, relation.target_id):
        raise NotFound("No such relation.")
    as_target = relation.target_id == issue.id
    other_id = relation.source_id if as_target else relation.target_id
    other = await session.scalar(
        select(Issue)
        .where(Issue.id == other_id, Issue.project_id.in_(readable_projects(actor)))
        .options(joinedload(Issue.project, innerjoin=True))
    )
    if other is None:
        raise NotFound("No such relation.")
    seen = seen_from(relation.kind, as_target)
    await session.delete(relation)
    await session.flush()
    await _record_on_both(session, actor, "relation.removed", issue, other, seen)
