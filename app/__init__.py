"""The application factory, and the one composition root: configuration, the database, the
background work (mail and webhook senders, the digest job, the live broker and its listener)
connected to the after-commit hooks, then the blueprints, the API and the error pages."""

from __future__ import annotations

import gc
import os
from collections.abc import Awaitable, Callable
from datetime import timedelta
from functools import partial
from typing import Any

from quart import Quart

from app import api, db
from app.blueprints import (
    account,
    admin,
    attachments,
    audit_log,
    auth,
    boards,
    errors,
    event_stream,
    feeds,
    finding,
    guards,
    imports,
    inbox,
    issues,
    layout,
    main,
    milestones,
    page_cache,
    passkeys,
    project_webhooks,
    projects,
    relations,
    security_log,
    single_sign_on,
    two_factor,
)
from app.commands import cli
from app.config import config
from app.db import Database
from app.live import Broker, CardCache, PostgresListener
from app.live.broker import encode_state
from app.live.inbox import InboxBroker
from app.outbound.mail import mail_sender_from_config
from app.outbound.webhooks import webhook_sender_from_config
from app.services import login_sessions, notifications
from app.services.accounts import AccountSettings
from app.services.importing import ImportRunner
from app.storage import storage_from_config
from app.storage.remover import FileRemover
from app.web import forwarded, health, logs, metrics


def create_app(config_name: str | None = None, **overrides: Any) -> Quart:
    """Make an app configured by `config_name` (else $ISSUES_CONFIG, else 'default').

    Keyword overrides win over the class and the environment; tests use them to pick a database.
    """
    config_name = config_name or os.environ.get("ISSUES_CONFIG") or "default"
    if config_name not in config:
        raise ValueError(f"Unknown configuration {config_name!r}; use one of {sorted(config)}")
    config_class = config[config_name]
    if config_class.__name__ == "DevelopmentConfig":
        # Development reads .env; production takes its environment from the platform.
        from dotenv import load_dotenv

        load_dotenv()

    app = Quart(__name__, instance_relative_config=True)
    config_class.load(app, overrides)
    app.config["CONFIG_NAME"] = config_name
    logs.configure_logging(app)

    database = db.init_app(app)
    health.init_app(app)  # first of the start-up work: refuses a schema behind the code
    metrics.init_app(app, database.engine)
    app.extensions["account_settings"] = AccountSettings.from_config(app.config)
    _connect_mail(app, database)
    _connect_webhooks(app, database)
    _connect_live(app, database)
    _connect_attachments(app, database)
    _connect_imports(app, database)

    guards.init_app(app)
    page_cache.init_app(app)
    layout.init_app(app)
    for blueprint in (
        main.bp,
        auth.bp,
        account.bp,
        projects.bp,
        issues.bp,
        boards.bp,
        milestones.bp,
        finding.bp,
        feeds.bp,
        project_webhooks.bp,
        relations.bp,
        security_log.bp,
        audit_log.bp,
        passkeys.bp,
        admin.bp,
        imports.bp,
        inbox.bp,
    ):
        app.register_blueprint(blueprint)
    single_sign_on.init_app(app)
    attachments.init_app(app)
    two_factor.init_app(app)
    api.init_app(app)
    layout.run_context_processors_in_the_loop(app)
    errors.init_app(app)
    cli.init_app(app)
    forwarded.init_app(app)
    return app


def _while_serving(
    app: Quart, start: Callable[[], Awaitable[None] | None], stop: Callable[[], Awaitable[None]]
) -> None:
    """Run `start` when the worker starts serving and `stop` when it stops."""

    @app.before_serving
    async def starting() -> None:
        started = start()
        if started is not None:
            await started

    @app.after_serving
    async def stopping() -> None:
        await stop()


def _connect_mail(app: Quart, database: Database) -> None:
    """The outbox's sender, woken by commits that queue mail, with the watchers' digests
    queued before each of its rounds."""
    config = app.config
    sender = mail_sender_from_config(config, database.sessionmaker)
    sender.metrics = app.extensions["metrics"]
    sender.producers.append(
        partial(
            notifications.mail_due_digests,
            base_url=config["BASE_URL"],
            quiet=timedelta(seconds=config["NOTIFY_QUIET_SECONDS"]),
            longest_wait=timedelta(seconds=config["NOTIFY_LONGEST_WAIT_SECONDS"]),
        )
    )
    database.after_commit.mail_queued.append(sender.wake)
    app.extensions["mail_sender"] = sender
    if config["MAIL_SEND_IN_BACKGROUND"]:
        _while_serving(app, sender.start, sender.stop)


def _connect_webhooks(app: Quart, database: Database) -> None:
    """The webhook deliveries' sender, woken by commits that queue deliveries."""
    sender = webhook_sender_from_config(app.config, database.sessionmaker)
    sender.metrics = app.extensions["metrics"]
    database.after_commit.deliveries_queued.append(sender.wake)
    app.extensions["webhook_sender"] = sender
    if app.config["WEBHOOK_SEND_IN_BACKGROUND"]:
        _while_serving(app, sender.start, sender.stop)


def _connect_attachments(app: Quart, database: Database) -> None:
    """Where attachments are stored, and the remover that deletes a file once the commit that
    dropped its row is done (decision 0020)."""
    storage = storage_from_config(app.config, app.instance_path)
    remover = FileRemover(storage)
    database.after_commit.files_released.append(remover.release)
    app.extensions["attachment_storage"] = storage
    app.extensions["attachment_remover"] = remover
    _while_serving(app, lambda: None, remover.drain)


def _connect_imports(app: Quart, database: Database) -> None:
    """The import runner (decision 0029): woken by the route that queues a job, polling for
    the jobs other workers queued or left behind."""
    runner = ImportRunner(
        database.sessionmaker,
        poll_seconds=app.config["IMPORT_POLL_SECONDS"],
        lease_seconds=app.config["IMPORT_LEASE_SECONDS"],
    )
    runner.storage = app.extensions["attachment_storage"]  # restores write files (0030)
    app.extensions["import_runner"] = runner
    # Its progress on the project's streams (PostgreSQL: from the listener, for every worker).
    broker: Broker = app.extensions["broker"]
    runner.tell_progress = lambda project_id, state: broker.tell(
        project_id, encode_state("import", state)
    )
    if app.config["IMPORT_RUN_IN_BACKGROUND"]:
        _while_serving(app, runner.start, runner.stop)


def _connect_live(app: Quart, database: Database) -> None:
    """The worker's broker, told of committed activity by PostgreSQL's NOTIFY (every worker)
    or, on SQLite's single process, by the after-commit hook."""
    # One memory of rendered cards serves the board pages and the live events.
    cards = CardCache(app.jinja_env)
    app.extensions["cards"] = cards
    settings: AccountSettings = app.extensions["account_settings"]

    async def may_still_read(project_id: int, readers: list[tuple[int, int]]) -> set[int]:
        async with database.sessionmaker() as session:
            return await login_sessions.sessions_still_reading(
                session, settings, project_id, readers
            )

    broker = Broker(
        database.sessionmaker,
        cards,
        queue_size=app.config["SSE_QUEUE_SIZE"],
        access_check=may_still_read,
        recheck_seconds=app.config["SSE_RECHECK_SECONDS"],
        metrics=app.extensions["metrics"],
    )
    app.extensions["broker"] = broker
    _while_serving(app, broker.start_rechecks, broker.close)
    # This worker's streams of a deactivated user end at its commit; on PostgreSQL the other
    # workers hear it from the listener (services.admin NOTIFYs in the same commit).
    database.after_commit.account_closed.append(broker.close_streams_of)

    async def still_live(auth_session_ids: list[int]) -> set[int]:
        async with database.sessionmaker() as session:
            return set(await login_sessions.live_sessions(session, settings, auth_session_ids))

    # The header's live unread count (decision 0028), woken the same two ways.
    inbox_broker = InboxBroker(
        database.sessionmaker,
        live_check=still_live,
        recheck_seconds=app.config["SSE_RECHECK_SECONDS"],
    )
    app.extensions["inbox_broker"] = inbox_broker
    _while_serving(app, inbox_broker.start_rechecks, inbox_broker.close)

    if database.backend == "postgresql":
        listener = PostgresListener(database.url, broker, inbox_broker)
        app.extensions["live_listener"] = listener
        _while_serving(app, listener.start, listener.stop)
    else:
        database.after_commit.activity_committed.append(broker.wake)
        database.after_commit.inbox_changed.append(inbox_broker.wake)

    # GET /p/<KEY>/events on a lean ASGI path beside Quart (decision 0014).
    event_stream.init_app(app)
    if app.config["GC_FREEZE_AFTER_START"]:
        # Registered last of the start-up work, so that it runs once the app is ready.
        _while_serving(app, _freeze_start_up_heap, _unfreeze_heap)


def _freeze_start_up_heap() -> None:
    """Move what start-up made (modules, the app, its templates and statements) out of the
    collector's sight: a full collection then walks only what came after, such as the open
    streams, instead of stalling a fan-out for 100 ms and more (decision 0014)."""
    gc.collect()
    gc.freeze()


async def _unfreeze_heap() -> None:
    # What was frozen may be garbage by now (an app made and dropped in the same process).
    gc.unfreeze()
