"""A whole project as one archive, and restoring it into a new project (decision 0030).

An archive is a .zip holding `project.jsonl` (JSON Lines: an `archive` header, then one record
per row of the project's tables) and `files/<storage key>` for attachments' bytes and
thumbnails. People are named by address and issues by number, never by id, so an archive
restores into any instance. The records are made from the tables' own columns (`PARTS`): a
column added to a table is exported and restored without touching this file, and the round-trip
test, which compares every column, fails if it is not.
"""

from app.services.importing.archive.check import Archive, read_archive, read_archive_in_thread
from app.services.importing.archive.export import export_project
from app.services.importing.archive.format import (
    FORMAT,
    PART,
    PARTS,
    PAYLOAD_REFS,
    RECORDS,
    VERSION,
    iter_lines,
    payload_ids,
)
from app.services.importing.archive.restore import restore_archive, restore_now

__all__ = [
    "FORMAT",
    "PART",
    "PARTS",
    "PAYLOAD_REFS",
    "RECORDS",
    "VERSION",
    "Archive",
    "export_project",
    "iter_lines",
    "payload_ids",
    "read_archive",
    "read_archive_in_thread",
    "restore_archive",
    "restore_now",
]
