"""Reading an archive and checking every record, reference and file before anything is written."""

from __future__ import annotations

import asyncio
import json
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Date

from app.db import UTCDateTime
from app.models import Project
from app.services.importing.archive.format import (
    FORMAT,
    PART,
    PROJECT_FIELDS,
    RECORDS,
    VERSION,
    columns_of,
    field_name,
    plain_name,
)
from app.services.importing.records import ImportRefused


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
            _require(record, PROJECT_FIELDS, where)
            record = {
                name: _parse(Project.__table__.c[name], record[name], where)
                for name in PROJECT_FIELDS
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
        for column in columns_of(part):
            if column.name in references:
                name = field_name(column.name)
                reference, target = record[name], references[column.name]
                if kind == "issue" and name == "parent":
                    parents.append((where, reference))  # may come later: checked at the end
                elif reference is not None and reference not in known[target]:
                    raise ImportRefused(f"{where}: {name} names an unknown {target} {reference!r}.")
                values[column.name] = reference
            else:
                values[column.name] = _parse(column, record[plain_name(column.name)], where)
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
                if values[name] in known[own]:
                    raise ImportRefused(
                        f"{where}: a second {own} with the {name} {values[name]!r}."
                    )
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


def _require(record: dict[str, Any], fields: list[str], where: str) -> None:
    missing = [name for name in fields if name not in record]
    if missing:
        raise ImportRefused(f"{where}: the {record['type']} record lacks {', '.join(missing)}.")


async def read_archive_in_thread(path: Path) -> Archive:
    return await asyncio.to_thread(read_archive, path)
