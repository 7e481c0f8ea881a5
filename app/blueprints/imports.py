"""Imports: a GitHub or Jira export uploaded from the project's settings, and its job's page;
a project's archive downloaded from its settings, and restored from the projects list as a
new project (decision 0030)."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from quart import Blueprint, Response, current_app, redirect, render_template, url_for

from app.blueprints.attachments import received_upload, streamed_upload
from app.blueprints.guards import logged_in_user, login_required
from app.db import get_session
from app.errors import Forbidden, Invalid
from app.models import ImportJob, ImportKind, Project
from app.services import importing, projects
from app.services.access import managed_project, require_validated, role_in
from app.services.importing import archive
from app.storage import CHUNK_BYTES, AttachmentStorage

bp = Blueprint("imports", __name__)

Page = str | Response | tuple[str, int]
SUFFIXES = {ImportKind.GITHUB: ".zip", ImportKind.JIRA: ".csv", ImportKind.ARCHIVE: ".zip"}


def imports_dir() -> Path:
    configured = current_app.config["IMPORT_DIR"]
    return Path(configured) if configured else Path(current_app.instance_path) / "imports"


async def _managed(key: str) -> Project:
    """The project if the viewer manages it: NotFound for those who may not read it, 403 for
    members who are not owners or admins."""
    session = get_session()
    project = await projects.project_by_key(session, logged_in_user(), key)
    role = await role_in(session, logged_in_user(), project.id)
    if role is None or not role.can_manage_project:
        raise Forbidden("Only the project's owners and admins can import into it.")
    return project


async def _authorise_upload(key: str) -> None:
    project = await _managed(key)
    await managed_project(get_session(), logged_in_user(), project.id)


def _keep(source: Path, kind: str) -> Path:
    """Move the spooled upload where every worker's runner can read it (blocking: a thread)."""
    folder = imports_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{uuid.uuid4().hex}{SUFFIXES[ImportKind(kind)]}"
    shutil.move(source, target)
    return target


@bp.post("/p/<project_key:key>/imports")
@login_required
@streamed_upload(_authorise_upload)
async def upload(key: str) -> Page:
    project = await _managed(key)
    try:
        upload, fields = await received_upload()
        kind = fields.get("kind", "")
        if kind not in tuple(ImportKind):
            raise Invalid("Choose what the file is: GitHub (.zip) or Jira (.csv).", field="kind")
        if upload.size == 0:
            raise Invalid("That file is empty.", field="file")
    except Invalid as refusal:
        page = await render_template(
            "imports/refused.html", project=project, message=refusal.message
        )
        return page, refusal.status
    stored = await asyncio.to_thread(_keep, upload.path, kind)
    try:
        job = await importing.queue_import(
            get_session(),
            logged_in_user(),
            project.id,
            kind=kind,
            source_path=stored,
            source_name=upload.file_name,
        )
    except BaseException:
        await asyncio.to_thread(stored.unlink, missing_ok=True)
        raise
    current_app.extensions["import_runner"].wake()
    return redirect(url_for("imports.job", key=project.key, job_id=job.id))


def _progress(job: ImportJob) -> tuple[int, int]:
    """Processed and total: the runner's memory when it runs here, else the job's row."""
    running = current_app.extensions["import_runner"].progress.get(job.id)
    return running if running is not None and not job.is_finished else (job.processed, job.total)


async def _job_context(key: str, job_id: int) -> dict[str, object]:
    project = await _managed(key)
    job = await importing.job_of_project(get_session(), project, job_id)
    processed, total = _progress(job)
    return {"project": project, "job": job, "processed": processed, "total": total}


@bp.get("/p/<project_key:key>/imports/<int(max=2147483647):job_id>")
@login_required
async def job(key: str, job_id: int) -> str:
    return await render_template("imports/job.html", **await _job_context(key, job_id))


@bp.get("/p/<project_key:key>/imports/<int(max=2147483647):job_id>/progress")
@login_required
async def progress(key: str, job_id: int) -> str:
    """The job's progress and, once it is over, its summary: what the page reads when its
    stream opens and when the stream says the job is over."""
    return await render_template("imports/_progress.html", **await _job_context(key, job_id))


@bp.get("/p/<project_key:key>/export")
@login_required
async def export(key: str) -> Response:
    """The project's archive as a download (owners and admins), read in one transaction."""
    return await archive_download(await _managed(key))


async def archive_download(project: Project) -> Response:
    """The project's archive as a response (the caller checked who asks): written to a
    temporary file in IMPORT_DIR, streamed out, then removed. Also the API's."""
    session = get_session()
    folder = imports_dir()
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    descriptor, name = tempfile.mkstemp(dir=folder, prefix="export-", suffix=".zip")
    await asyncio.to_thread(os.close, descriptor)
    target = Path(name)
    try:
        await archive.export_project(session, archive_storage(), project.id, target)
        await session.commit()
    except BaseException:
        await asyncio.to_thread(target.unlink, missing_ok=True)
        raise

    async def body() -> AsyncIterator[bytes]:
        try:
            with await asyncio.to_thread(target.open, "rb") as file:
                while chunk := await asyncio.to_thread(file.read, CHUNK_BYTES):
                    yield chunk
        finally:
            await asyncio.to_thread(target.unlink, missing_ok=True)

    response = Response(body(), content_type="application/zip")
    stamp = project.key.lower()
    response.headers["Content-Disposition"] = f'attachment; filename="{stamp}-archive.zip"'
    return response


def archive_storage() -> AttachmentStorage:
    return current_app.extensions["attachment_storage"]


async def _authorise_restore() -> None:
    require_validated(logged_in_user())


@bp.get("/projects/restores")
@login_required
async def restore_form() -> str:
    return await render_template("imports/restore.html", message="")


@bp.post("/projects/restores")
@login_required
@streamed_upload(_authorise_restore)
async def restore_upload() -> Page:
    try:
        upload, fields = await received_upload()
        if upload.size == 0:
            raise Invalid("That file is empty.", field="file")
    except Invalid as refusal:
        page = await render_template("imports/restore.html", message=refusal.message)
        return page, refusal.status
    stored = await asyncio.to_thread(_keep, upload.path, ImportKind.ARCHIVE)
    try:
        job = await importing.queue_restore(
            get_session(),
            logged_in_user(),
            source_path=stored,
            source_name=upload.file_name,
            key=fields.get("key", ""),
        )
    except BaseException:
        await asyncio.to_thread(stored.unlink, missing_ok=True)
        raise
    current_app.extensions["import_runner"].wake()
    return redirect(url_for("imports.restore_job", job_id=job.id))


async def _restore_context(job_id: int) -> dict[str, object]:
    session = get_session()
    job = await importing.restore_of(session, logged_in_user(), job_id)
    processed, total = _progress(job)
    project = await session.get(Project, job.project_id) if job.project_id else None
    return {"job": job, "processed": processed, "total": total, "project": project}


@bp.get("/projects/restores/<int(max=2147483647):job_id>")
@login_required
async def restore_job(job_id: int) -> str:
    return await render_template("imports/restore_job.html", **await _restore_context(job_id))


@bp.get("/projects/restores/<int(max=2147483647):job_id>/progress")
@login_required
async def restore_progress(job_id: int) -> str:
    """The restore's progress and, once over, its summary: the page polls this part."""
    return await render_template("imports/_restore_progress.html", **await _restore_context(job_id))
