"""Writing a project's archive: rows read in batches, records written line by line."""

from __future__ import annotations

import asyncio
import json
import zipfile
from pathlib import Path
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Issue, IssueLabel, Label, Project, User
from app.models.attachment import THUMBNAIL_SUFFIX
from app.services.importing.archive.format import (
    BATCH,
    FORMAT,
    PARTS,
    PROJECT_FIELDS,
    RECORDS,
    VERSION,
    Part,
    columns_of,
    field_name,
    json_value,
    payload_ids,
    plain_name,
)
from app.services.importing.records import ImportRefused
from app.storage import AttachmentStorage


def _project_scope(part: Part, project_id: int) -> Any:
    """The WHERE clause that picks the project's rows of a part."""
    table = part.table
    if "project_id" in table.c:
        return table.c.project_id == project_id
    issues = select(Issue.id).where(Issue.project_id == project_id)
    if part.type == "relation":
        # A relation to another project's issue has nothing to point at in a new instance.
        return table.c.source_id.in_(issues) & table.c.target_id.in_(issues)
    return table.c.issue_id.in_(issues)


class _Names:
    """Ids to the names the archive uses, loaded as the export goes."""

    def __init__(self) -> None:
        self.person: dict[int, str] = {}
        self.issue: dict[int, int] = {}
        self.status: dict[int, str] = {}
        self.milestone: dict[int, str] = {}
        self.comment: dict[int, int] = {}
        self.attachment: dict[int, int] = {}
        self.label: dict[int, str] = {}

    def of(self, kind: str, value: int | None) -> Any:
        if value is None:
            return None
        return getattr(self, kind)[value]


async def _people(session: AsyncSession, project_id: int) -> list[User]:
    """Everyone the project's rows name: members, reporters, commenters, actors..."""
    ids: set[int] = set()
    for part in PARTS:
        for column, kind in part.references().items():
            if kind == "person":
                ids.update(
                    i
                    for i in await session.scalars(
                        select(part.table.c[column])
                        .where(_project_scope(part, project_id))
                        .distinct()
                    )
                    if i is not None
                )
    users: list[User] = []
    ordered = sorted(ids)
    for start in range(0, len(ordered), BATCH):
        users += await session.scalars(
            select(User).where(User.id.in_(ordered[start : start + BATCH])).order_by(User.id)
        )
    return users


async def export_project(
    session: AsyncSession, storage: AttachmentStorage, project_id: int, target: Path
) -> dict[str, int]:
    """Write the project's archive to `target` (a .zip); how many records of each type. Reads
    the rows in batches of BATCH and writes the records line by line into the zip entry, so a
    big project is never held whole in memory. Read in one transaction: one consistent copy."""
    project = await session.get(Project, project_id)
    if project is None:
        raise ImportRefused("The project is gone.")
    names = _Names()
    counts: dict[str, int] = {}
    files: list[tuple[str, str]] = []  # (storage key, path in the zip)
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open(RECORDS, "w", force_zip64=True) as raw:
            out = _Lines(raw, counts)
            emit = out.emit

            emit(
                {
                    "type": "archive",
                    "format": FORMAT,
                    "version": VERSION,
                    "exported_from": project.key,
                }
            )
            emit(
                {"type": "project"}
                | {name: json_value(getattr(project, name)) for name in PROJECT_FIELDS}
            )
            for user in await _people(session, project_id):
                names.person[user.id] = user.email
                emit(
                    {
                        "type": "person",
                        "email": user.email,
                        "display_name": user.display_name,
                        "handle": user.handle,
                    }
                )
            for row in await session.execute(
                select(Label.id, Label.name).where(Label.project_id == project_id)
            ):
                names.label[row.id] = row.name
            for part in PARTS:
                await _export_part(session, part, project_id, names, out, files)
            await out.flush()
        for key, name in files:
            # Streamed from the storage into the entry a chunk at a time (deflated in a thread).
            with archive.open(name, "w", force_zip64=True) as entry:
                async for chunk in storage.stream(key):
                    await asyncio.to_thread(entry.write, chunk)
    return counts


class _Lines:
    """The records' lines, gathered per batch and compressed into the entry in a thread: the
    event loop only encodes JSON."""

    def __init__(self, raw: IO[bytes], counts: dict[str, int]) -> None:
        self.raw, self.counts = raw, counts
        self.pending: list[bytes] = []

    def emit(self, record: dict[str, Any]) -> None:
        self.pending.append(json.dumps(record, ensure_ascii=False).encode() + b"\n")
        self.counts[record["type"]] = self.counts.get(record["type"], 0) + 1

    async def flush(self) -> None:
        if self.pending:
            data, self.pending = b"".join(self.pending), []
            await asyncio.to_thread(self.raw.write, data)


def _named_payload(kind: str, payload: dict[str, Any], names: _Names) -> dict[str, Any]:
    payload = json.loads(json.dumps(payload))  # a copy to rewrite
    for container, key, target in payload_ids(kind, payload):
        container[key] = {"$ref": target, "name": getattr(names, target).get(container[key])}
    return payload


async def _export_part(
    session: AsyncSession,
    part: Part,
    project_id: int,
    names: _Names,
    out: _Lines,
    files: list[tuple[str, str]],
) -> None:
    table = part.table
    references = part.references()
    columns = columns_of(part)
    query = (
        select(table)
        .where(_project_scope(part, project_id))
        .order_by(*(table.c[name] for name in part.order))
    )
    result = await session.stream(query.execution_options(yield_per=BATCH))
    async for batch in result.partitions(BATCH):
        labels: dict[int, list[str]] = {}
        if part.type == "issue":
            rows = await session.execute(
                select(IssueLabel.c.issue_id, IssueLabel.c.label_id).where(
                    IssueLabel.c.issue_id.in_([row.id for row in batch])
                )
            )
            for issue_id, label_id in rows:
                labels.setdefault(issue_id, []).append(names.label[label_id])
        for row in batch:
            values = row._mapping
            record: dict[str, Any] = {"type": part.type}
            for column in columns:
                value = values[column.name]
                if column.name in references:
                    record[field_name(column.name)] = names.of(references[column.name], value)
                else:
                    record[plain_name(column.name)] = json_value(value)
            if part.type == "status":
                names.status[values["id"]] = values["name"]
            elif part.type == "milestone":
                names.milestone[values["id"]] = values["title"]
            elif part.type == "issue":
                names.issue[values["id"]] = values["number"]
                record["labels"] = sorted(labels.get(values["id"], []))
            elif part.type == "comment":
                names.comment[values["id"]] = record["ref"] = len(names.comment) + 1
            elif part.type == "activity":
                record["payload"] = _named_payload(values["kind"], values["payload"], names)
            elif part.type == "attachment":
                names.attachment[values["id"]] = record["ref"] = len(names.attachment) + 1
                key = values["storage_key"]
                record["file"] = f"files/{key}"
                files.append((key, record["file"]))
                record["thumbnail"] = None
                if values["has_thumbnail"]:
                    record["thumbnail"] = f"files/{key}{THUMBNAIL_SUFFIX}"
                    files.append((key + THUMBNAIL_SUFFIX, record["thumbnail"]))
            out.emit(record)
        await out.flush()
