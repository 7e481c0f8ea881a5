"""What pages, cards, searches and the API show of sub-issues and relations: only issues the
viewer may read (decision 0018). The writes are in services/relations."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, func, literal, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.models import (
    Issue,
    IssueRelation,
    Membership,
    Project,
    RelationKind,
    RelationType,
    StatusCategory,
    User,
    WorkflowStatus,
)
from app.models.issue import issue_key_pattern
from app.models.relation import seen_from
from app.services.access import readable_project

_DONE = StatusCategory.DONE.value


def readable_projects(viewer: User | None) -> Select[Any]:
    """The ids of the projects `viewer` may read (access.readable_project's rule, as SQL)."""
    if viewer is None:
        return select(Project.id).where(Project.is_public.is_(True))
    member_of = select(Membership.project_id).where(Membership.user_id == viewer.id)
    return select(Project.id).where(or_(Project.is_public.is_(True), Project.id.in_(member_of)))


def split_key(key: str) -> tuple[str, int] | None:
    key = key.strip().upper()
    if not re.fullmatch(issue_key_pattern(), key):
        return None
    project_key, _, number = key.rpartition("-")
    return project_key, int(number)


# --- Reading: the issue page and the API ------------------------------------------------------


@dataclass(frozen=True)
class IssueLink:
    """Another issue as a page lists it."""

    id: int
    key: str
    title: str
    status: str
    done: bool
    version: int


@dataclass(frozen=True)
class RelationLink:
    id: int
    type: RelationType
    issue: IssueLink


@dataclass
class IssueRelations:
    """An issue's parent, sub-issues and relations, as `viewer` may see them."""

    parent: IssueLink | None = None
    sub_issues: list[IssueLink] = field(default_factory=list)
    relations: list[RelationLink] = field(default_factory=list)

    @property
    def done_count(self) -> int:
        return sum(1 for link in self.sub_issues if link.done)

    @property
    def progress(self) -> str:
        return f"{self.done_count} of {len(self.sub_issues)} done"

    @property
    def blocked(self) -> bool:
        return any(r.type == RelationType.BLOCKED_BY and not r.issue.done for r in self.relations)

    def by_type(self) -> list[tuple[RelationType, list[RelationLink]]]:
        return [
            (kind, [r for r in self.relations if r.type == kind])
            for kind in RelationType
            if any(r.type == kind for r in self.relations)
        ]

    @property
    def proof(self) -> tuple[tuple[Any, ...], ...]:
        """What a kept issue page showed of other issues: while one query gives the same, the
        page still holds (their titles and statuses change on their own events, not this
        issue's; and the viewer may lose access to another project)."""
        rows = [("parent", 0, self.parent)] if self.parent else []
        rows += [("sub", 0, link) for link in self.sub_issues]
        rows += [(r.type.value, r.id, r.issue) for r in self.relations]
        return tuple((role, rid, link.id, link.version) for role, rid, link in rows)


def _link_select(
    other: Any, role: Any, incoming: bool, relation_id: Any, *where: ColumnElement[bool]
) -> Select[Any]:
    status = aliased(WorkflowStatus)
    project = aliased(Project)
    return (
        select(
            role.label("role"),
            literal(incoming).label("incoming"),
            relation_id.label("relation_id"),
            other.id,
            other.number,
            other.title,
            other.version,
            project.key,
            status.name,
            status.category,
        )
        .join(project, project.id == other.project_id)
        .join(status, status.id == other.status_id)
        .where(*where)
    )


async def issue_relations(
    session: AsyncSession, viewer: User | None, issue_id: int, parent_id: int | None
) -> IssueRelations:
    """The issue's parent, sub-issues (by number) and relations to issues `viewer` may read,
    in one query. A relation to an issue the viewer may not read is left out entirely."""
    readable = readable_projects(viewer)
    child, parent, source, target = (aliased(Issue) for _ in range(4))
    outgoing, incoming = aliased(IssueRelation), aliased(IssueRelation)
    parts = [
        _link_select(child, literal("sub"), False, literal(0), child.parent_id == issue_id),
        _link_select(
            target,
            outgoing.kind,
            False,
            outgoing.id,
            outgoing.source_id == issue_id,
            target.project_id.in_(readable),
        ).join(outgoing, outgoing.target_id == target.id),
        _link_select(
            source,
            incoming.kind,
            True,
            incoming.id,
            incoming.target_id == issue_id,
            source.project_id.in_(readable),
        ).join(incoming, incoming.source_id == source.id),
    ]
    if parent_id is not None:
        parts.append(
            _link_select(parent, literal("parent"), False, literal(0), parent.id == parent_id)
        )
    rows = (await session.execute(union_all(*parts))).all()
    found = IssueRelations()
    for (
        role,
        incoming,
        relation_id,
        other_id,
        number,
        title,
        version,
        key,
        status,
        category,
    ) in sorted(rows, key=lambda row: (row[7], row[4], row[2])):
        link = IssueLink(other_id, f"{key}-{number}", title, status, category == _DONE, version)
        if role == "sub":
            found.sub_issues.append(link)
        elif role == "parent":
            found.parent = link
        else:
            found.relations.append(RelationLink(relation_id, seen_from(role, bool(incoming)), link))
    return found


async def relations_of_issue(
    session: AsyncSession, viewer: User | None, issue: Issue
) -> IssueRelations:
    """issue_relations of an issue the caller has read (and so may read)."""
    await readable_project(session, viewer, issue.project_id)
    return await issue_relations(session, viewer, issue.id, issue.parent_id)


# --- Board cards ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CardMarks:
    """What a board card shows of its relations: blocked (open, with an open blocker), and its
    sub-issues' progress (done, total)."""

    blocked: bool = False
    done: int = 0
    total: int = 0


NO_MARKS = CardMarks()


async def card_marks(session: AsyncSession, issue_ids: Sequence[int]) -> dict[int, CardMarks]:
    """The marks of these cards, in one query. A card is shared by everyone who reads its
    board, so only blockers that all of them may read count: the card's own project's, or a
    public project's (decision 0018)."""
    ids = sorted(set(issue_ids))
    if not ids:
        return {}
    child, child_status = aliased(Issue), aliased(WorkflowStatus)
    progress = (
        select(
            child.parent_id.label("issue_id"),
            literal(0).label("blocked"),
            func.count().label("total"),
            func.sum(case((child_status.category == _DONE, 1), else_=0)).label("done"),
        )
        .join(child_status, child_status.id == child.status_id)
        .where(child.parent_id.in_(ids))
        .group_by(child.parent_id)
    )
    blocked_issue, blocked_status = aliased(Issue), aliased(WorkflowStatus)
    blocker, blocker_status, blocker_project = (
        aliased(Issue),
        aliased(WorkflowStatus),
        aliased(Project),
    )
    blocking = (
        select(
            IssueRelation.target_id.label("issue_id"),
            literal(1).label("blocked"),
            literal(0).label("total"),
            literal(0).label("done"),
        )
        .join(blocked_issue, blocked_issue.id == IssueRelation.target_id)
        .join(blocked_status, blocked_status.id == blocked_issue.status_id)
        .join(blocker, blocker.id == IssueRelation.source_id)
        .join(blocker_status, blocker_status.id == blocker.status_id)
        .join(blocker_project, blocker_project.id == blocker.project_id)
        .where(
            IssueRelation.target_id.in_(ids),
            IssueRelation.kind == RelationKind.BLOCKS.value,
            blocked_status.category != _DONE,
            blocker_status.category != _DONE,
            or_(
                blocker.project_id == blocked_issue.project_id,
                blocker_project.is_public.is_(True),
            ),
        )
        .distinct()
    )
    marks: dict[int, CardMarks] = {}
    for issue_id, blocked, total, done in await session.execute(union_all(progress, blocking)):
        known = marks.get(issue_id, NO_MARKS)
        marks[issue_id] = CardMarks(
            blocked=known.blocked or bool(blocked),
            done=known.done + int(done or 0),
            total=known.total + int(total or 0),
        )
    return marks


# --- Search -----------------------------------------------------------------------------------

# The search box's qualifiers that ask about relations (also parent:KEY and blocks:KEY).
RELATION_QUALIFIERS = {("is", "blocked"), ("is", "duplicate"), ("has", "sub-issues")}


def _issue_id_named(key: str, viewer: User | None) -> Any:
    """The id of the issue called `key` if `viewer` may read it (no row otherwise, so that a
    search names no issue it may not see)."""
    parts = split_key(key)
    if parts is None:
        return select(Issue.id).where(literal(False)).scalar_subquery()
    return (
        select(Issue.id)
        .join(Project, Project.id == Issue.project_id)
        .where(Project.key == parts[0], Issue.number == parts[1])
        .where(Issue.project_id.in_(readable_projects(viewer)))
        .scalar_subquery()
    )


def relation_condition(name: str, value: str, viewer: User | None) -> ColumnElement[bool]:
    """The condition of `parent:KEY`, `blocks:KEY`, `is:blocked`, `is:duplicate` or
    `has:sub-issues` on Issue, written so that NOT of it is right too. Only relations to issues
    `viewer` may read count: is:blocked means blocked by an open issue they can see."""
    if name == "parent":
        return and_(Issue.parent_id.is_not(None), Issue.parent_id == _issue_id_named(value, viewer))
    if name == "has":
        child = aliased(Issue)
        return Issue.id.in_(select(child.parent_id).where(child.parent_id.is_not(None)))
    if name == "blocks":
        blocked = select(IssueRelation.source_id).where(
            IssueRelation.kind == RelationKind.BLOCKS.value,
            IssueRelation.target_id == _issue_id_named(value, viewer),
        )
        return Issue.id.in_(blocked)
    other = aliased(Issue)
    if value == "duplicate":
        duplicates = (
            select(IssueRelation.source_id)
            .join(other, other.id == IssueRelation.target_id)
            .where(
                IssueRelation.kind == RelationKind.DUPLICATES.value,
                other.project_id.in_(readable_projects(viewer)),
            )
        )
        return Issue.id.in_(duplicates)
    # is:blocked: open, with an open blocker the viewer may read.
    open_statuses = select(WorkflowStatus.id).where(WorkflowStatus.category != _DONE)
    blocked = (
        select(IssueRelation.target_id)
        .join(other, other.id == IssueRelation.source_id)
        .where(
            IssueRelation.kind == RelationKind.BLOCKS.value,
            other.status_id.in_(open_statuses),
            other.project_id.in_(readable_projects(viewer)),
        )
    )
    return and_(Issue.status_id.in_(open_statuses), Issue.id.in_(blocked))
