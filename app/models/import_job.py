"""An import of another tracker's export into a project, run in the background (decision 0029)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow


class ImportKind(StrEnum):
    GITHUB = "github"
    JIRA = "jira"
    ARCHIVE = "archive"  # a project archive restored as a new project (decision 0030)


class ImportStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class ImportJob(Base):
    """One uploaded export and what became of it. A runner claims a queued job (or a running
    one whose lease ran out: its worker died) by moving `lease_until` forward; the data goes in
    one transaction with `status = done`, so a job is done exactly when its data is there."""

    __tablename__ = "import_job"
    __table_args__ = (Index("ix_import_job_status_lease_until", "status", "lease_until"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # NULL for a restore until it is done: the project it makes does not exist before.
    project_id: Mapped[int | None] = mapped_column(
        ForeignKey("project.id", ondelete="CASCADE"), index=True
    )
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=ImportStatus.QUEUED.value)
    # Where the uploaded file waits (a path under the instance's imports folder).
    source_path: Mapped[str] = mapped_column(String(500))
    source_name: Mapped[str] = mapped_column(String(255), default="")
    total: Mapped[int] = mapped_column(Integer, default=0)
    processed: Mapped[int] = mapped_column(Integer, default=0)
    # imported/skipped counts, skipped records with reasons, statuses added, unknown values.
    summary: Mapped[dict[str, Any]] = mapped_column(
        JSON().with_variant(JSONB(), "postgresql"), default=dict
    )
    error: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    @property
    def is_finished(self) -> bool:
        return self.status in (ImportStatus.DONE, ImportStatus.FAILED)
