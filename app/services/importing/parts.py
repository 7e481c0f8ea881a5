"""The parts of a project an export needs before its issues: statuses, labels, milestones."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Label, Milestone, Project, StatusCategory, WorkflowStatus
from app.services.importing.records import ImportData, ImportRefused, MilestoneRecord
from app.services.text import DESCRIPTION_MAX, storable


def guess_category(name: str) -> StatusCategory:
    """A new status's category from its name, as Jira's usual ones mean."""
    lowered = name.lower()
    if any(word in lowered for word in ("done", "closed", "resolved", "complete", "fixed")):
        return StatusCategory.DONE
    if any(word in lowered for word in ("progress", "review", "testing", "doing")):
        return StatusCategory.IN_PROGRESS
    return StatusCategory.TODO


@dataclass
class Workflow:
    statuses: list[WorkflowStatus]
    added: list[str] = field(default_factory=list)

    def first_of(self, category: StatusCategory) -> WorkflowStatus | None:
        return next((s for s in self.statuses if s.category == category), None)

    def named(self, name: str) -> WorkflowStatus | None:
        return next((s for s in self.statuses if s.name.lower() == name.lower()), None)


async def workflow_for(session: AsyncSession, project: Project, data: ImportData) -> Workflow:
    """The project's statuses, with those the export needs added last (Jira's unknown names;
    a done column for GitHub's closed issues if the workflow has none)."""
    workflow = Workflow(
        list(
            await session.scalars(
                select(WorkflowStatus)
                .where(WorkflowStatus.project_id == project.id)
                .order_by(WorkflowStatus.position)
            )
        )
    )
    wanted: list[tuple[str, StatusCategory]] = []
    for issue in data.issues:
        if issue.status_name is not None:
            if workflow.named(issue.status_name) is None and all(
                name.lower() != issue.status_name.lower() for name, _ in wanted
            ):
                if len(issue.status_name) > 50:
                    raise ImportRefused(f"{issue.where}: a status name is at most 50 characters")
                wanted.append((issue.status_name, guess_category(issue.status_name)))
        elif workflow.first_of(issue.category) is None and all(
            category != issue.category for _, category in wanted
        ):
            wanted.append(
                ("Done" if issue.category == StatusCategory.DONE else "To do", issue.category)
            )
    position = max((s.position for s in workflow.statuses), default=0)
    for name, category in wanted:
        position += 1
        status = WorkflowStatus(
            project_id=project.id, name=name, category=category.value, position=position
        )
        session.add(status)
        workflow.statuses.append(status)
        workflow.added.append(f"{name} ({category.value.replace('_', ' ')})")
    await session.flush()
    return workflow


async def labels_for(
    session: AsyncSession, project: Project, data: ImportData
) -> tuple[dict[str, int], list[str]]:
    existing = {
        label.name.lower(): label
        for label in await session.scalars(select(Label).where(Label.project_id == project.id))
    }
    colors = {label.name.lower(): label.color for label in data.labels}
    names: dict[str, str] = {label.name.lower(): label.name for label in data.labels}
    for issue in data.issues:
        for name in issue.labels:
            names.setdefault(name.lower(), name)
    added = []
    for lowered, name in names.items():
        if lowered in existing:
            continue
        label = Label(project_id=project.id, name=name[:50], color=colors.get(lowered, "#6b7280"))
        session.add(label)
        existing[lowered] = label
        added.append(label.name)
    await session.flush()
    return {lowered: label.id for lowered, label in existing.items()}, added


async def milestones_for(
    session: AsyncSession, project: Project, data: ImportData
) -> tuple[dict[str, int], list[str]]:
    existing = {
        milestone.title: milestone
        for milestone in await session.scalars(
            select(Milestone).where(Milestone.project_id == project.id)
        )
    }
    records = {record.title[:100]: record for record in data.milestones}
    for issue in data.issues:
        if issue.milestone and issue.milestone[:100] not in records:
            records[issue.milestone[:100]] = MilestoneRecord(title=issue.milestone[:100])
    added = []
    for title, record in records.items():
        if title in existing:
            continue
        milestone = Milestone(
            project_id=project.id,
            title=title,
            description=storable(record.description)[:DESCRIPTION_MAX],
            due_date=record.due_date,
            closed_at=record.closed_at,
        )
        session.add(milestone)
        existing[title] = milestone
        added.append(title)
    await session.flush()
    return {title: milestone.id for title, milestone in existing.items()}, added
