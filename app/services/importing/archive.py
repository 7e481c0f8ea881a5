"""A whole project as one archive, and restoring it into a new project (decision 0030).

An archive is a .zip holding `project.jsonl` (JSON Lines: an `archive` header, then one record
per row of the project's tables) and `files/<storage key>` for attachments' bytes and
thumbnails. People are named by address and issues by number, never by id, so an archive
restores into any instance. The records are made from the tables' own columns (`PARTS`): a
column added to a table is exported and restored without touching this file, and the round-trip
test, which compares every column, fails if it is not.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Date, Table, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import UTCDateTime, after_commit, begin_writing
from app.errors import Conflict
from app.models import (
    Activity,
    Attachment,
    Comment,
    Issue,
    IssueLabel,
    IssueRelation,
    Label,
    Membership,
    Milestone,
    Project,
    User,
    Watcher,
    WorkflowStatus,
)
from app.models.attachment import THUMBNAIL_SUFFIX
from app.services.activity import take_numbers
from app.services.importing.people import resolve_people
from app.services.importing.records import ImportRefused, PersonRef
from app.services.importing.writer import Progress, _write_search_documents
from app.services.projects import normalise_key
from app.storage import CHUNK_BYTES, AttachmentStorage

FORMAT = "issues-archive"
VERSION = 1
RECORDS = "project.jsonl"
BATCH = 1000  # rows read per query while exporting, and inserted per statement on restore

# What a foreign key is written as: the referenced row's name in the archive.
_REFERENCE_KINDS = {
    "user": "person",  # its address
    "issue": "issue",  # its number
    "workflow_status": "status",  # its name
    "milestone": "milestone",  # its title
    "comment": "comment",  # its `ref`, the comment's place in the archive
}


# Ids inside activity payloads, by key: what they are written as. The burn-up chart reads
# `milestone: [before, after]` ids; the live layer reads `comment_id`. In the archive such an id
# is {"$ref": kind, "name": ...} (name None when its row is gone), and a restore writes the new
# row's id back.
PAYLOAD_REFS = {
    "comment_id": "comment",
    "attachment_id": "attachment",
    "status_id": "status",
    "user_id": "person",
    "sub_issue_id": "issue",
    "other_issue_id": "issue",
}


def payload_ids(kind: str, payload: dict[str, Any]) -> list[tuple[Any, int, str]]:
    """Where a payload holds ids: (container, key or index, kind of row)."""
    found: list[tuple[Any, int, str]] = []
    for key, target in PAYLOAD_REFS.items():
        if isinstance(payload.get(key), int):
            found.append((payload, key, target))  # type: ignore[arg-type]
    if kind.startswith("milestone.") and isinstance(payload.get("id"), int):
        found.append((payload, "id", "milestone"))  # type: ignore[arg-type]
    pair = payload.get("milestone")
    if (
        isinstance(pair, list)
        and len(pair) == 2
        and all(v is None or (isinstance(v, int) and not isinstance(v, bool)) for v in pair)
    ):
        found += [(pair, place, "milestone") for place in (0, 1) if pair[place] is not None]
    return found


@dataclass(frozen=True)
class Part:
    """One table's records: `type` in the archive, its table, the order rows are written in."""

    type: str
    table: Table
    order: tuple[str, ...]

    def columns(self) -> list[Any]:
        left_out = {"id", "project_id"} | _LEFT_OUT.get(self.type, set())
        return [c for c in self.table.columns if c.name not in left_out]

    def references(self) -> dict[str, str]:
        """column name -> the kind of name it is written as"""
        found = {}
        for column in self.columns():
            for key in column.foreign_keys:
                found[column.name] = _REFERENCE_KINDS[key.column.table.name]
        return found

    def fields(self) -> list[str]:
        """Every field a record of this part must have."""
        names = [_field(c.name) if c.name in self.references() else c.name for c in self.columns()]
        return [_plain(name) for name in names] + _EXTRA.get(self.type, [])


def _field(column: str) -> str:
    return column.removesuffix("_id")


def _plain(column: str) -> str:
    """A column's field name: an issue's `type` would hide the record's own."""
    return "issue_type" if column == "type" else column


_EXTRA = {"issue": ["labels"], "comment": ["ref"], "attachment": ["ref", "file", "thumbnail"]}
# storage_key is the instance's own name for the bytes: the archive has `file` instead.
_LEFT_OUT = {"attachment": {"storage_key"}}

PARTS = [
    Part("status", WorkflowStatus.__table__, ("position", "id")),
    Part("label", Label.__table__, ("name",)),
    Part("milestone", Milestone.__table__, ("id",)),
    Part("member", Membership.__table__, ("created_at", "user_id")),
    Part("issue", Issue.__table__, ("number",)),
    Part("comment", Comment.__table__, ("id",)),
    Part("relation", IssueRelation.__table__, ("id",)),
    Part("watcher", Watcher.__table__, ("issue_id", "user_id")),
    Part("attachment", Attachment.__table__, ("id",)),
    Part("activity", Activity.__table__, ("seq",)),
]
PART = {part.type: part for part in PARTS}
_PROJECT_FIELDS = [c.name for c in Project.__table__.columns if c.name != "id"]


def _columns(part: Part) -> list[Any]:
    return part.columns()


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


# --- export ------------------------------------------------------------------------------------


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

            def emit(record: dict[str, Any]) -> None:
                raw.write(json.dumps(record, ensure_ascii=False, sort_keys=False).encode())
                raw.write(b"\n")
                counts[record["type"]] = counts.get(record["type"], 0) + 1

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
                | {name: _json_value(getattr(project, name)) for name in _PROJECT_FIELDS}
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
                await _export_part(session, part, project_id, names, emit, files)
        for key, name in files:
            # Streamed from the storage into the entry a chunk at a time.
            with archive.open(name, "w", force_zip64=True) as entry:
                async for chunk in storage.stream(key):
                    entry.write(chunk)
    return counts


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
    emit: Any,
    files: list[tuple[str, str]],
) -> None:
    table = part.table
    references = part.references()
    columns = _columns(part)
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
                    record[_field(column.name)] = names.of(references[column.name], value)
                else:
                    record[_plain(column.name)] = _json_value(value)
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
            emit(record)


# --- reading and checking ----------------------------------------------------------------------


@dataclass
class Archive:
    """A checked archive: its records by type, each with the line it came from."""

    path: Path
    project: dict[str, Any]
    records: dict[str, list[tuple[int, dict[str, Any]]]] = field(default_factory=dict)
    people: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return len(self.records.get("issue", []))


def _parse(column: Any, value: Any, where: str) -> Any:
    """A stored value back from its JSON form, or a refusal naming the line."""
    if value is None:
        return None
    try:
        if isinstance(column.type, UTCDateTime):
            return datetime.fromisoformat(value)
        if isinstance(column.type, Date):
            return date.fromisoformat(value)
    except (TypeError, ValueError) as error:
        raise ImportRefused(f"{where}: {column.name} {value!r} is not a date: {error}") from None
    return value


def read_archive(path: Path) -> Archive:
    """Read and check an archive (blocking: call it in a thread). Every record is checked,
    every reference followed and every named file looked for before anything is written; the
    first fault refuses the whole archive with its line number."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise ImportRefused(f"This is not a project archive (.zip): {error}") from None
    with archive:
        names = set(archive.namelist())
        if RECORDS not in names:
            raise ImportRefused(f"This .zip is not a project archive: it has no {RECORDS}.")
        with archive.open(RECORDS) as raw:
            checked = _read_records(path, raw)
        for line, record in checked.records.get("attachment", []):
            for name in (record["file"], record["thumbnail"]):
                if name is not None and name not in names:
                    raise ImportRefused(
                        f"{RECORDS} line {line}: the file {name} is not in the zip."
                    )
    return checked


def _read_records(path: Path, raw: IO[bytes]) -> Archive:
    result: Archive | None = None
    parents: list[tuple[str, Any]] = []
    known: dict[str, set[Any]] = {
        kind: set()
        for kind in ("person", "status", "label", "milestone", "issue", "comment", "attachment")
    }
    for line, text in enumerate(raw, start=1):
        where = f"{RECORDS} line {line}"
        try:
            record = json.loads(text)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ImportRefused(f"{where}: not a JSON record ({error}).") from None
        if not isinstance(record, dict) or not isinstance(record.get("type"), str):
            raise ImportRefused(f'{where}: a record must be an object with a "type".')
        kind = record["type"]
        if line == 1:
            if kind != "archive" or record.get("format") != FORMAT:
                raise ImportRefused(f"{where}: this is not an {FORMAT} file.")
            if record.get("version") != VERSION:
                raise ImportRefused(
                    f"{where}: archive version {record.get('version')!r}; "
                    f"this instance reads version {VERSION}."
                )
            continue
        if kind == "project":
            _require(record, _PROJECT_FIELDS, where)
            record = {
                name: _parse(Project.__table__.c[name], record[name], where)
                for name in _PROJECT_FIELDS
            }
            result = Archive(path=path, project=record)
            continue
        if result is None:
            raise ImportRefused(f'{where}: a "{kind}" record before the "project" record.')
        if kind == "person":
            _require(record, ["email", "display_name", "handle"], where)
            result.people[record["email"]] = record
            known["person"].add(record["email"])
            continue
        part = PART.get(kind)
        if part is None:
            raise ImportRefused(f'{where}: unknown record type "{kind}".')
        _require(record, part.fields(), where)
        references = part.references()
        values: dict[str, Any] = {}
        for column in _columns(part):
            if column.name in references:
                name = _field(column.name)
                reference, target = record[name], references[column.name]
                if kind == "issue" and name == "parent":
                    parents.append((where, reference))  # may come later: checked at the end
                elif reference is not None and reference not in known[target]:
                    raise ImportRefused(f"{where}: {name} names an unknown {target} {reference!r}.")
                values[column.name] = reference
            else:
                values[column.name] = _parse(column, record[_plain(column.name)], where)
        if kind == "issue":
            for label in record["labels"]:
                if label not in known["label"]:
                    raise ImportRefused(f"{where}: labels name an unknown label {label!r}.")
            values["labels"] = record["labels"]
        elif kind == "comment":
            values["ref"] = record["ref"]
        elif kind == "attachment":
            values["ref"] = record["ref"]
            values["file"], values["thumbnail"] = record["file"], record["thumbnail"]
        elif kind == "activity":
            _check_payload(values["payload"], known, where)
        for own, name in (
            ("status", "name"),
            ("label", "name"),
            ("milestone", "title"),
            ("issue", "number"),
            ("comment", "ref"),
            ("attachment", "ref"),
        ):
            if kind == own:
                known[own].add(values[name])
        result.records.setdefault(kind, []).append((line, values))
    if result is None:
        raise ImportRefused(f'{RECORDS}: no "project" record.')
    for where, parent in parents:
        if parent is not None and parent not in known["issue"]:
            raise ImportRefused(f"{where}: parent names an unknown issue {parent!r}.")
    if not known["status"]:
        raise ImportRefused(f"{RECORDS}: the archive has no workflow statuses.")
    return result


def _check_payload(payload: Any, known: dict[str, set[Any]], where: str) -> None:
    """Every {"$ref": ...} in a payload names a row the archive has (or none: its row is gone)."""
    if isinstance(payload, dict):
        if "$ref" in payload:
            target, name = payload.get("$ref"), payload.get("name")
            if target not in known or (name is not None and name not in known[target]):
                raise ImportRefused(f"{where}: the payload names an unknown {target} {name!r}.")
            return
        for value in payload.values():
            _check_payload(value, known, where)
    elif isinstance(payload, list):
        for value in payload:
            _check_payload(value, known, where)


def _restored_payload(payload: Any, ids: dict[str, dict[Any, int]]) -> Any:
    if isinstance(payload, dict):
        if "$ref" in payload:
            name = payload["name"]
            return None if name is None else ids[payload["$ref"]][name]
        return {key: _restored_payload(value, ids) for key, value in payload.items()}
    if isinstance(payload, list):
        return [_restored_payload(value, ids) for value in payload]
    return payload


def _require(record: dict[str, Any], fields: list[str], where: str) -> None:
    missing = [name for name in fields if name not in record]
    if missing:
        raise ImportRefused(f"{where}: the {record['type']} record lacks {', '.join(missing)}.")


async def read_archive_in_thread(path: Path) -> Archive:
    return await asyncio.to_thread(read_archive, path)


# --- restore -----------------------------------------------------------------------------------


def _unpack(path: Path, name: str, staging_dir: Path) -> Path:
    staging_dir.mkdir(parents=True, exist_ok=True)
    descriptor, spooled = tempfile.mkstemp(dir=staging_dir, prefix="restore-", suffix=".part")
    with (
        zipfile.ZipFile(path) as archive,
        archive.open(name) as source,
        open(descriptor, "wb") as out,
    ):
        shutil.copyfileobj(source, out, CHUNK_BYTES)
    return Path(spooled)


async def restore_archive(
    session: AsyncSession,
    storage: AttachmentStorage,
    actor: User | None,
    archive: Archive,
    *,
    key: str | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Write the archive as a new project in the caller's transaction and say what was done.
    Numbers, seq, times and versions are kept exactly; people are matched by address, else
    placeholders. Attachment files are stored as they go and deleted again if anything fails
    (the caller's rollback included: call it through `restore_now`). Does not commit."""
    project_key = normalise_key(key or archive.project["key"])
    if await session.scalar(select(Project.id).where(Project.key == project_key)) is not None:
        raise Conflict(
            f"The key {project_key} is taken: restore under another key (--key).", field="key"
        )
    fields = dict(archive.project) | {"key": project_key}
    project = Project(**fields)
    session.add(project)
    await session.flush()
    project_id = project.id

    emails = list(archive.people)
    existing = {
        email.lower(): user_id
        for user_id, email in await session.execute(
            select(User.id, User.email).where(
                func.lower(User.email).in_([e.lower() for e in emails])
            )
        )
    }
    strangers = [archive.people[e] for e in emails if e.lower() not in existing]
    made = await resolve_people(
        session,
        [PersonRef(email=p["email"], name=p["display_name"] or p["handle"]) for p in strangers],
    )
    person: dict[str, int] = {}
    for email in emails:
        person[email] = existing.get(email.lower()) or made[email.lower()]
    placeholders = sorted(e for e in emails if e.lower() not in existing)

    ids: dict[str, dict[Any, int]] = {"person": person}
    summary: dict[str, Any] = {"key": project_key, "placeholders": placeholders, "skipped": []}
    stored: list[str] = []
    try:
        for part in PARTS:
            await _restore_part(session, storage, archive, part, project_id, ids, summary, stored)
        await _restore_search(session, archive, ids)
        if actor is not None and actor.id not in {
            user_id
            for user_id in await session.scalars(
                select(Membership.user_id).where(Membership.project_id == project_id)
            )
        }:
            session.add(Membership(project_id=project_id, user_id=actor.id, role="owner"))
        await session.execute(
            update(Project)
            .where(Project.id == project_id)
            .values(
                last_issue_number=max(
                    [archive.project["last_issue_number"]]
                    + [r["number"] for _, r in archive.records.get("issue", [])]
                ),
                last_event_seq=max(
                    [archive.project["last_event_seq"]]
                    + [r["seq"] for _, r in archive.records.get("activity", [])]
                ),
            )
            .execution_options(synchronize_session=False)
        )
        await session.flush()
    except BaseException:
        await _delete(storage, stored)
        raise
    # Should the commit fail after this, the caller deletes these (restore_now does).
    summary["stored_files"] = stored
    after_commit.note_activity(session, project_id)
    summary["restored"] = {part.type: len(archive.records.get(part.type, [])) for part in PARTS}
    return summary


async def _delete(storage: AttachmentStorage, keys: list[str]) -> None:
    for stored_key in keys:
        await storage.delete(stored_key)


async def _restore_part(
    session: AsyncSession,
    storage: AttachmentStorage,
    archive: Archive,
    part: Part,
    project_id: int,
    ids: dict[str, dict[Any, int]],
    summary: dict[str, Any],
    stored: list[str],
    progress: Progress | None = None,
) -> None:
    records = archive.records.get(part.type, [])
    references = part.references()
    table = part.table
    rows: list[dict[str, Any]] = []
    placeholder_ids = {ids["person"][e] for e in summary["placeholders"]}
    for line, record in records:
        row = {"project_id": project_id} if "project_id" in table.c else {}
        for column in _columns(part):
            value = record[column.name]
            if part.type == "issue" and column.name == "parent_id":
                value = None  # set once every issue has its id (_restore_issue_links)
            elif column.name in references and value is not None:
                value = ids[references[column.name]][value]
            row[column.name] = value
        if part.type == "member" and row["user_id"] in placeholder_ids:
            # Placeholders are never members (decision 0029): their work is kept, not access.
            summary["skipped"].append(
                {"where": f"line {line}", "reason": f"member {record['user_id']} has no account"}
            )
            continue
        if part.type == "attachment":
            row["storage_key"] = await _store(storage, archive, record, row, stored)
        elif part.type == "activity":
            row["payload"] = _restored_payload(row["payload"], ids)
        rows.append(row)
    if not rows:
        return
    returning = part.type in ("status", "milestone", "issue", "comment", "attachment")
    made: list[int] = []
    for start in range(0, len(rows), BATCH):
        chunk = rows[start : start + BATCH]
        if returning:
            made += await session.scalars(
                insert(table).returning(table.c.id, sort_by_parameter_order=True), chunk
            )
        else:
            await session.execute(insert(table), chunk)
        if part.type == "issue" and progress is not None:
            await progress(start + len(chunk))
    if part.type == "status":
        ids["status"] = {r["name"]: i for r, i in zip(rows, made, strict=True)}
    elif part.type == "milestone":
        ids["milestone"] = {r["title"]: i for r, i in zip(rows, made, strict=True)}
    elif part.type in ("comment", "attachment"):
        ids[part.type] = {r["ref"]: i for (_, r), i in zip(records, made, strict=True)}
    elif part.type == "issue":
        await _restore_issue_links(session, records, made, project_id, ids)


async def _restore_issue_links(
    session: AsyncSession,
    records: list[tuple[int, dict[str, Any]]],
    made: list[int],
    project_id: int,
    ids: dict[str, dict[Any, int]],
) -> None:
    """Parents, labels and search documents, once every issue has its id."""
    number_to_id = {r["number"]: i for (_, r), i in zip(records, made, strict=True)}
    ids["issue"] = number_to_id
    labels = {
        name: label_id
        for label_id, name in await session.execute(
            select(Label.id, Label.name).where(Label.project_id == project_id)
        )
    }
    links = []
    for (_, record), issue_id in zip(records, made, strict=True):
        if record["parent_id"] is not None:
            await session.execute(
                update(Issue.__table__)
                .where(Issue.__table__.c.id == issue_id)
                # updated_at given, or its onupdate would stamp it with now.
                .values(
                    parent_id=number_to_id[record["parent_id"]], updated_at=record["updated_at"]
                )
            )
        links += [{"issue_id": issue_id, "label_id": labels[name]} for name in record["labels"]]
    for start in range(0, len(links), BATCH):
        await session.execute(insert(IssueLabel), links[start : start + BATCH])


async def _restore_search(
    session: AsyncSession, archive: Archive, ids: dict[str, dict[Any, int]]
) -> None:
    """Each issue's search document, as refresh_search_document makes it: title, description,
    live comments (and the old key of an imported issue, as the importer writes it)."""
    comments: dict[int, list[str]] = {}
    for _, record in archive.records.get("comment", []):
        if record["deleted_at"] is None:
            comments.setdefault(record["issue_id"], []).append(record["body"])
    dialect = session.get_bind().dialect.name
    search = []
    for _, record in archive.records.get("issue", []):
        key = record["external_key"] or ""
        texts = [record["title"], record["description"]]
        texts += [key, key.replace("-", " ")] if key else []
        texts += comments.get(record["number"], [])
        search.append({"issue_id": ids["issue"][record["number"]], "text": " ".join(texts)})
        if len(search) == BATCH:
            await _write_search_documents(session, dialect, search)
            search = []
    await _write_search_documents(session, dialect, search)


async def _store(
    storage: AttachmentStorage,
    archive: Archive,
    record: dict[str, Any],
    row: dict[str, Any],
    stored: list[str],
) -> str:
    key = f"{row['issue_id']}/{uuid.uuid4().hex}"
    for name, stored_key in ((record["file"], key), (record["thumbnail"], key + THUMBNAIL_SUFFIX)):
        if name is None:
            continue
        spooled = await asyncio.to_thread(_unpack, archive.path, name, storage.staging_dir)
        try:
            await storage.put(
                stored_key, spooled, row["content_type"] if stored_key == key else "image/png"
            )
        finally:
            await asyncio.to_thread(spooled.unlink, missing_ok=True)
        stored.append(stored_key)
    return key


async def restore_now(
    session: AsyncSession,
    storage: AttachmentStorage,
    actor: User | None,
    archive: Archive,
    *,
    key: str | None = None,
) -> dict[str, Any]:
    """Restore in a transaction of its own (use_case's shape, plus the files): committed, or
    rolled back with every stored file deleted again, so a failed restore leaves no project,
    no row and no file."""
    if session.in_transaction():
        await session.commit()
    await begin_writing(session)
    stored: list[str] = []
    try:
        summary = await restore_archive(session, storage, actor, archive, key=key)
        stored = summary.pop("stored_files")
        await take_numbers(session)
        await session.commit()
    except BaseException:
        await session.rollback()
        await _delete(storage, stored)
        raise
    return summary


def iter_lines(path: Path) -> Iterator[dict[str, Any]]:
    """The archive's records, one at a time (for tests and tools)."""
    with zipfile.ZipFile(path) as archive, archive.open(RECORDS) as raw:
        for text in raw:
            yield json.loads(text)
