"""Import jobs: queued from an upload, claimed by a runner with a lease, run all or nothing."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import begin_writing, utcnow
from app.errors import Invalid, NotFound, ServiceError
from app.models import ImportJob, ImportKind, ImportStatus, Project, User
from app.outbound.sender import BackgroundSender
from app.services.access import managed_project, require_validated
from app.services.activity import take_numbers
from app.services.importing import archive
from app.services.importing.github import read_github
from app.services.importing.jira import read_jira
from app.services.importing.records import ImportData, ImportRefused
from app.services.importing.writer import Progress, write_import
from app.services.transaction import use_case
from app.storage import AttachmentStorage

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3  # a job whose worker died this often mid-run is given up
# Where a job's progress goes to every worker's streams of its project (PostgreSQL).
PROGRESS_CHANNEL = "issues_import_progress"
# (project id, {"job_id", "status", "processed", "total"}) -> told to this worker's streams.
ProgressHook = Callable[[int, dict[str, Any]], None]


def read_export(kind: str, path: Path) -> ImportData:
    """Read and check an export of `kind` (blocking: call it in a thread)."""
    if kind == ImportKind.GITHUB:
        return read_github(path)
    if kind == ImportKind.JIRA:
        return read_jira(path)
    raise ImportRefused(f"Unknown import kind {kind!r}; use github or jira.")


async def read_export_in_thread(kind: str, path: Path) -> ImportData:
    return await asyncio.to_thread(read_export, kind, path)


@use_case
async def import_now(
    session: AsyncSession,
    actor: User | None,
    project_id: int,
    data: ImportData,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Import `data` into the project in one transaction (the command line's way); the summary.
    Raises ImportRefused; nothing is written then."""
    return await write_import(session, actor, project_id, data, progress)


@use_case
async def queue_import(
    session: AsyncSession,
    actor: User,
    project_id: int,
    *,
    kind: str,
    source_path: Path,
    source_name: str,
) -> ImportJob:
    """Queue an import of the uploaded file for the runner. Owners and admins only."""
    await managed_project(session, actor, project_id)
    if kind not in (ImportKind.GITHUB, ImportKind.JIRA):
        raise Invalid("Choose GitHub or Jira.", field="kind")
    job = ImportJob(
        project_id=project_id,
        requested_by_id=actor.id,
        kind=kind,
        source_path=str(source_path),
        source_name=source_name[:255],
        summary={},
    )
    session.add(job)
    await session.flush()
    return job


@use_case
async def queue_restore(
    session: AsyncSession,
    actor: User,
    *,
    source_path: Path,
    source_name: str,
    key: str = "",
) -> ImportJob:
    """Queue the restore of an uploaded project archive as a new project, owned by `actor` too
    (decision 0030). Anyone who may create a project may restore one."""
    require_validated(actor)
    job = ImportJob(
        project_id=None,
        requested_by_id=actor.id,
        kind=ImportKind.ARCHIVE.value,
        source_path=str(source_path),
        source_name=source_name[:255],
        summary={"key": key.strip().upper()} if key.strip() else {},
    )
    session.add(job)
    await session.flush()
    return job


async def restore_of(session: AsyncSession, viewer: User, job_id: int) -> ImportJob:
    """A restore job, for the person who asked for it only (NotFound for anyone else)."""
    job = await session.get(ImportJob, job_id)
    if job is None or job.kind != ImportKind.ARCHIVE or job.requested_by_id != viewer.id:
        raise NotFound("No such restore.")
    return job


async def job_of_project(session: AsyncSession, project: Project, job_id: int) -> ImportJob:
    job = await session.get(ImportJob, job_id)
    if job is None or job.project_id != project.id:
        raise NotFound("No such import.")
    return job


async def recent_jobs(
    session: AsyncSession, project_id: int, *, limit: int = 10
) -> list[ImportJob]:
    return list(
        await session.scalars(
            select(ImportJob)
            .where(ImportJob.project_id == project_id)
            .order_by(ImportJob.id.desc())
            .limit(limit)
        )
    )


@dataclass
class Claim:
    job_id: int
    attempt: int  # the job's `attempts` after this claim: the runner's token for its writes
    project_id: int = 0  # known once the job is read


def _claimable(now: Any) -> Any:
    return or_(
        ImportJob.status == ImportStatus.QUEUED.value,
        and_(ImportJob.status == ImportStatus.RUNNING.value, ImportJob.lease_until < now),
    )


async def _finish(
    session: AsyncSession, claim: Claim, summary: dict[str, Any], total: int, **values: Any
) -> None:
    """The job's `done`, in the import's own transaction, named by the claim: a runner that
    lost its job to another writes nothing (ImportRefused). Takes the numbers last."""
    finished = await session.execute(
        update(ImportJob)
        .where(ImportJob.id == claim.job_id, ImportJob.attempts == claim.attempt)
        .values(
            status=ImportStatus.DONE.value,
            summary=summary,
            total=total,
            processed=total,
            finished_at=utcnow(),
            lease_until=None,
            error="",
            **values,
        )
    )
    if finished.rowcount != 1:
        raise ImportRefused("Another worker took this job over; this run stopped.")
    await take_numbers(session)


class ImportRunner(BackgroundSender[int]):
    """Claims queued imports and runs them one at a time, like the senders: several workers may
    run one each, and a claim (an UPDATE that only one of them can win) hands a job to exactly
    one. The runner renews its lease with each progress report; its final write, with the
    data, names its claim, so a runner that lost its job to another commits nothing."""

    name: ClassVar[str] = "import runner"
    log: ClassVar[logging.Logger] = log
    # Set by the app factory: shows a job's progress on this worker's streams of its project.
    # On PostgreSQL every worker (this one too) hears it from a NOTIFY in the commit that
    # records the progress instead, so that a page on any worker moves (decision 0029).
    tell_progress: ProgressHook | None = None

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        poll_seconds: float,
        lease_seconds: float,
    ) -> None:
        super().__init__(sessionmaker, poll_seconds=poll_seconds)
        self.lease = timedelta(seconds=lease_seconds)
        # Where a restore writes attachments' bytes (set by the app; restores need it).
        self.storage: AttachmentStorage | None = None
        # job id -> (processed, total): what the pages show while the import's transaction is
        # open (SQLite's writer lock keeps the progress rows from being written there).
        self.progress: dict[int, tuple[int, int]] = {}

    async def deliver_pending(self) -> int:
        """Run every claimable job; how many ran."""
        ran = 0
        while (claim := await self.claim()) is not None:
            await self.run(claim)
            ran += 1
        return ran

    async def claim(self) -> Claim | None:
        """Take the oldest claimable job for this runner, or None."""
        async with self.sessionmaker() as session:
            await begin_writing(session)
            now = utcnow()
            candidates = list(
                await session.scalars(
                    select(ImportJob.id).where(_claimable(now)).order_by(ImportJob.id).limit(5)
                )
            )
            for job_id in candidates:
                claimed = await session.execute(
                    update(ImportJob)
                    .where(ImportJob.id == job_id, _claimable(now))
                    .values(
                        status=ImportStatus.RUNNING.value,
                        attempts=ImportJob.attempts + 1,
                        lease_until=now + self.lease,
                        started_at=now,
                    )
                    .returning(ImportJob.attempts)
                )
                attempt = claimed.scalar_one_or_none()
                if attempt is None:
                    continue  # another runner won it
                if attempt > MAX_ATTEMPTS:
                    await session.execute(
                        update(ImportJob)
                        .where(ImportJob.id == job_id)
                        .values(
                            status=ImportStatus.FAILED.value,
                            error=f"Gave up after {MAX_ATTEMPTS} attempts: the worker running "
                            "it stopped each time.",
                            finished_at=now,
                            lease_until=None,
                        )
                    )
                    continue
                await session.commit()
                return Claim(job_id, attempt)
            await session.commit()
        return None

    def _on_postgresql(self) -> bool:
        return self.sessionmaker.kw["bind"].dialect.name == "postgresql"

    def _state(self, claim: Claim, status: str) -> dict[str, Any]:
        processed, total = self.progress.get(claim.job_id, (0, 0))
        return {"job_id": claim.job_id, "status": status, "processed": processed, "total": total}

    def _tell(self, claim: Claim, status: str) -> None:
        """Show the job's state on this worker's streams of the project (SQLite: one process)."""
        if self.tell_progress is not None and claim.project_id:
            self.tell_progress(claim.project_id, self._state(claim, status))

    async def _announce(self, session: AsyncSession, claim: Claim, status: str) -> None:
        """Tell the project's streams where the job stands once `session` commits: by NOTIFY
        in that commit on PostgreSQL (every worker hears it), else right away. A restore has
        no project (nor stream) to tell until it is done: its page reads the job."""
        if not claim.project_id:
            return
        if self._on_postgresql():
            payload = json.dumps({"project_id": claim.project_id, **self._state(claim, status)})
            await session.execute(select(func.pg_notify(PROGRESS_CHANNEL, payload)))
        else:
            self._tell(claim, status)

    async def _job_write(self, claim: Claim, *, announce: str | None = None, **values: Any) -> bool:
        """A short transaction of its own on the claimed job; False if the claim was lost.
        With `announce`, the project's pages hear the job's new state."""
        async with self.sessionmaker() as session:
            await begin_writing(session)
            result = await session.execute(
                update(ImportJob)
                .where(ImportJob.id == claim.job_id, ImportJob.attempts == claim.attempt)
                .values(**values)
            )
            if announce is not None and result.rowcount == 1:
                await self._announce(session, claim, announce)
            await session.commit()
            return result.rowcount == 1

    async def run(self, claim: Claim) -> None:
        """Run a claimed job to done or failed."""
        async with self.sessionmaker() as session:
            job = await session.get(ImportJob, claim.job_id)
            assert job is not None
            actor = await session.get(User, job.requested_by_id) if job.requested_by_id else None
            kind, path, project_id = job.kind, Path(job.source_path), job.project_id
            claim.project_id = project_id or 0  # a restore has no project until it is done
            wanted_key = str(job.summary.get("key", "")) if kind == ImportKind.ARCHIVE else ""
            if actor is not None:
                session.expunge(actor)
        finished = False
        try:
            if kind == ImportKind.ARCHIVE:
                checked = await archive.read_archive_in_thread(path)
                self.progress[claim.job_id] = (0, checked.total)
                await self._job_write(claim, total=checked.total, processed=0)
                await self._restore(claim, actor, checked, wanted_key)
                finished = True
                log.info("restore %s: %s issues", claim.job_id, checked.total)
            else:
                assert project_id is not None
                data = await read_export_in_thread(kind, path)
                self.progress[claim.job_id] = (0, data.total)
                await self._job_write(claim, announce="running", total=data.total, processed=0)
                await self._import(claim, actor, project_id, data)
                finished = True
                log.info("import %s into project %s: %s", claim.job_id, project_id, data.total)
        except ServiceError as refusal:  # a refusal (a taken key too): its own message
            finished = await self._failed(claim, refusal.message)
        except Exception as error:
            log.exception("import %s failed", claim.job_id)
            finished = await self._failed(
                claim, f"The import failed: {type(error).__name__}: {error}"
            )
        finally:
            self.progress.pop(claim.job_id, None)
        if finished:  # the upload has served its purpose (a lost claim's new owner still needs it)
            await asyncio.to_thread(path.unlink, missing_ok=True)

    def _reporter(self, claim: Claim, total: int) -> Progress:
        postgresql = self._on_postgresql()

        async def progress(processed: int) -> None:
            self.progress[claim.job_id] = (processed, total)
            # A separate short transaction, seen by every worker's pages while the import's own
            # stays open; on SQLite the import holds the only writer lock, so memory it is.
            if postgresql:
                if not await self._job_write(
                    claim,
                    announce="running",
                    processed=processed,
                    lease_until=utcnow() + self.lease,
                ):
                    raise ImportRefused("Another worker took this import over; this run stopped.")
            else:
                self._tell(claim, "running")
            await asyncio.sleep(0)  # let the pages and streams of this worker run

        return progress

    async def _import(
        self, claim: Claim, actor: User | None, project_id: int, data: ImportData
    ) -> dict[str, Any]:
        progress = self._reporter(claim, data.total)
        async with self.sessionmaker() as session:
            await begin_writing(session)
            try:
                summary = await write_import(session, actor, project_id, data, progress)
                await _finish(session, claim, summary, data.total)
                self.progress[claim.job_id] = (data.total, data.total)
                if self._on_postgresql():
                    await self._announce(session, claim, "done")  # delivered at the commit
                await session.commit()
            except BaseException:
                await session.rollback()
                raise
        if not self._on_postgresql():
            self._tell(claim, "done")
        return summary

    async def _restore(
        self, claim: Claim, actor: User | None, checked: archive.Archive, key: str
    ) -> dict[str, Any]:
        """The restore and the job's `done` in one transaction; on any failure the files it
        stored are deleted again, so nothing of it is left (decision 0030)."""
        if self.storage is None:
            raise ImportRefused("This runner has no attachment storage to restore into.")
        progress = self._reporter(claim, checked.total)
        stored: list[str] = []
        async with self.sessionmaker() as session:
            await begin_writing(session)
            try:
                summary = await archive.restore_archive(
                    session, self.storage, actor, checked, key=key or None, progress=progress
                )
                stored = summary.pop("stored_files")
                project_id = await session.scalar(
                    select(Project.id).where(Project.key == summary["key"])
                )
                await _finish(session, claim, summary, checked.total, project_id=project_id)
                await session.commit()
            except BaseException:
                await session.rollback()
                for stored_key in stored:
                    await self.storage.delete(stored_key)
                raise
        return summary

    async def _failed(self, claim: Claim, message: str) -> bool:
        return await self._job_write(
            claim,
            announce="failed",
            status=ImportStatus.FAILED.value,
            error=message[:5000],
            finished_at=utcnow(),
            lease_until=None,
        )
