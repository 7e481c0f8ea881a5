"""`quart --app app backup DEST`: a consistent copy of an embedded (SQLite) instance, taken while
it runs. PostgreSQL instances are backed up with pg_dump instead (docs/deploy.md, section 9)."""

from __future__ import annotations

import shutil
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from app.storage.local import LocalStorage


@dataclass(frozen=True)
class Backup:
    database: Path
    attachments: Path | None
    files: int


class BackupRefused(Exception):
    """What stops a backup, in words for the admin."""


def back_up(database_url: str, storage: object, destination: Path) -> Backup:
    """Copy the SQLite database with SQLite's online backup (a consistent snapshot even while
    workers write: pages changed during the copy are copied again), then the attachment files.
    The database goes first: a file uploaded after the snapshot is only an extra file, while
    the other order could leave a row whose file was never copied."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        raise BackupRefused(
            "This instance runs on PostgreSQL: back it up with pg_dump (docs/deploy.md, "
            "section 9, shows the commands)."
        )
    source = Path(url.database or "")
    if not source.is_file():
        raise BackupRefused(f"There is no database at {source}.")
    destination.mkdir(parents=True, exist_ok=True)
    target = destination / "issues.db"
    if target.exists():
        raise BackupRefused(f"{target} exists already: choose an empty folder.")
    with closing(sqlite3.connect(source)) as live, closing(sqlite3.connect(target)) as copy:
        live.backup(copy)
    if not isinstance(storage, LocalStorage):
        return Backup(target, None, 0)  # an object store keeps its own copies (section 9)
    files = destination / "attachments"
    copied = 0
    if storage.root.is_dir():
        shutil.copytree(
            storage.root, files, ignore=shutil.ignore_patterns(".staging"), dirs_exist_ok=True
        )
        copied = sum(1 for path in files.rglob("*") if path.is_file())
    return Backup(target, files, copied)
