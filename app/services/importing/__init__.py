"""Imports from other trackers (GitHub Issues, Jira): read, checked, then written all at once."""

from app.services.importing.jobs import (
    ImportRunner,
    import_now,
    job_of_project,
    queue_import,
    queue_restore,
    read_export,
    read_export_in_thread,
    recent_jobs,
    restore_of,
)
from app.services.importing.people import merge_placeholder, user_by_email
from app.services.importing.records import ImportData, ImportRefused

__all__ = [
    "ImportData",
    "ImportRefused",
    "ImportRunner",
    "import_now",
    "job_of_project",
    "merge_placeholder",
    "queue_import",
    "queue_restore",
    "read_export",
    "read_export_in_thread",
    "recent_jobs",
    "restore_of",
    "user_by_email",
]
