"""The application factory: configuration, database, blueprints, error pages."""

from __future__ import annotations

import os
from typing import Any

from quart import Quart

from app import api, db, live
from app.commands import cli
from app.config import config
from app.outbound import mail, webhooks
from app.web import forwarded, health, logs


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

    db.init_app(app)
    health.init_app(app)  # first of the start-up work: refuses a schema behind the code
    mail.init_app(app)
    webhooks.init_app(app)
    live.init_app(app)

    from app.blueprints import (
        account,
        auth,
        boards,
        errors,
        finding,
        guards,
        issues,
        layout,
        main,
        page_cache,
        project_webhooks,
        projects,
    )

    guards.init_app(app)
    page_cache.init_app(app)
    layout.init_app(app)
    for blueprint in (main.bp, auth.bp, account.bp, projects.bp, issues.bp, boards.bp, finding.bp):
        app.register_blueprint(blueprint)
    app.register_blueprint(project_webhooks.bp)
    api.init_app(app)
    layout.run_context_processors_in_the_loop(app)
    errors.init_app(app)
    cli.init_app(app)
    forwarded.init_app(app)
    return app
