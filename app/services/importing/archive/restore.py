"""Restoring a checked archive as a new project, in one transaction, files included."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
import zipfile
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import after_commit, begin_writing
from app.errors import Conflict
from app.models import Issue, IssueLabel, Label, Membership, Project, User
from app.models.attachment import THUMBNAIL_SUFFIX
from app.services.activity import take_numbers
from app.services.importing.archive.check import Archive
from app.services.importing.archive.format import BATCH, PARTS, Part, columns_of
from app.services.importing.people import resolve_people
from app.services.importing.records import PersonRef
from app.services.importing.writer import Progress, _write_search_documents
from app.services.projects import normalise_key
from app.storage import CHUNK_BYTES, AttachmentStorage


def _restored_payload(payload: Any, ids: dict[str, dict[Any, int]]) -> Any:
    if isinstance(payload, dict):
        if "$ref" in payload:
            name = payload["name"]
            return None if name is None else ids[payload["$ref"]][name]
        return {key: _restored_payload(value, ids) for key, value in payload.items()}
    if isinstance(payload, list):
        return [_restored_payload(value, ids) for value in payload]
    return payload


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
        for column in columns_of(part):
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
