"""What `quart --app app check` reports, and the admin console's configuration page shows: each
missing or unsafe setting of a configuration, and whether its database is reachable and
migrated. (Here below the blueprints and commands, so that both can use it.)"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import make_url

from app.config import DEV_SECRET_KEY, ConfigurationError, ProductionConfig, config, relying_party
from app.config import normalise_database_url as _normalise


@dataclass(frozen=True)
class Problem:
    key: str
    message: str
    # Unsafe: production must not run like this (the command exits non-zero). Otherwise a
    # warning worth reading.
    unsafe: bool = True

    def __str__(self) -> str:
        return f"{'unsafe' if self.unsafe else 'warning'}: {self.key}: {self.message}"


def read_settings(config_name: str) -> dict[str, Any]:
    """The settings an app of `config_name` would get from its class and the environment,
    without the refusals, so that every problem can be listed, not only the first."""
    config_class = config[config_name]
    settings = {key: getattr(config_class, key) for key in dir(config_class) if key.isupper()}
    settings.update(config_class.from_environment())
    return settings


def configuration_problems(config_name: str, settings: Mapping[str, Any]) -> list[Problem]:
    production = issubclass(config[config_name], ProductionConfig)
    problems: list[Problem] = []

    def unsafe(key: str, message: str) -> None:
        problems.append(Problem(key, message))

    def warn(key: str, message: str) -> None:
        problems.append(Problem(key, message, unsafe=False))

    for key, allowed in (
        ("SIGNUP_MODE", ("open", "closed", "domains")),
        ("MAIL_BACKEND", ("smtp", "log")),
        ("LOG_FORMAT", ("json", "text")),
    ):
        if settings[key] not in allowed:
            unsafe(key, f"{settings[key]!r} is not one of {', '.join(allowed)}")
    if settings["SIGNUP_MODE"] == "domains" and not settings["SIGNUP_DOMAINS"].strip():
        warn("SIGNUP_DOMAINS", "SIGNUP_MODE=domains with no domains: nobody can sign up")
    from app.web.forwarded import parse_trusted

    try:
        trusted = parse_trusted(settings["TRUST_PROXY_ADDRESSES"])
    except ConfigurationError as error:
        unsafe("TRUST_PROXY_ADDRESSES", str(error))
        trusted = []

    try:
        rp_id, _ = relying_party(
            settings["BASE_URL"], settings["WEBAUTHN_RP_ID"], settings["WEBAUTHN_ORIGIN"]
        )
    except ConfigurationError as error:
        unsafe("WEBAUTHN_RP_ID", f"{error} (the app refuses to start)")
        rp_id = None

    secret = settings.get("SECRET_KEY") or ""
    if not production:
        if secret == DEV_SECRET_KEY:
            warn("SECRET_KEY", "the development default (fine here, refused in production)")
        return problems

    if not secret or secret == DEV_SECRET_KEY:
        unsafe("SECRET_KEY", "missing or the development default (production refuses to start)")
    elif len(secret) < 32:
        unsafe("SECRET_KEY", "shorter than 32 characters (production refuses to start)")
    url = _normalise(settings.get("DATABASE_URL") or "")
    if not url:
        unsafe("DATABASE_URL", "not set (production refuses to start)")
    elif url.startswith("sqlite"):
        unsafe("DATABASE_URL", "SQLite serves one process on one machine: use PostgreSQL")
    if settings["DATABASE_ECHO"]:
        unsafe("DATABASE_ECHO", "logs every statement with its parameters: turn it off")
    if settings["MAIL_BACKEND"] == "log":
        unsafe("MAIL_BACKEND", "log prints reset links to the log (production refuses to start)")
    if not settings["BASE_URL"].startswith("https://"):
        unsafe("BASE_URL", f"{settings['BASE_URL']} is not https: links in mail would be too")
    if rp_id == "":
        warn("WEBAUTHN_RP_ID", "BASE_URL is an IP address, no domain: passkeys are off")
    if not settings["QUART_AUTH_COOKIE_SECURE"]:
        unsafe("QUART_AUTH_COOKIE_SECURE", "login cookies would be sent over plain http")
    if settings["MAIL_BACKEND"] == "smtp" and settings["MAIL_SENDER"].endswith("@localhost>"):
        warn("MAIL_SENDER", "an @localhost sender is refused by most mail servers")
    if settings["MAIL_PASSWORD"] and not settings["MAIL_USE_TLS"]:
        warn("MAIL_USE_TLS", "the SMTP password is sent in clear if the server offers no STARTTLS")
    if settings["TRUST_PROXY_COUNT"] == 0:
        warn(
            "TRUST_PROXY_COUNT",
            "0: behind a reverse proxy every client shares its address for the rate limits",
        )
    elif trusted is None:
        warn(
            "TRUST_PROXY_ADDRESSES",
            "* believes X-Forwarded-For from anyone who reaches the port: list your proxies",
        )
    if settings["LOG_FORMAT"] != "json":
        warn("LOG_FORMAT", "text lines: log collectors read json")
    return problems


DATABASE_CHECK_SECONDS = 5.0


async def database_problems(database_url: str) -> list[Problem]:
    """Whether the database answers and its schema is the one the code needs."""
    from app.db import create_engine
    from app.db.migrations import SchemaState, code_heads, schema_state

    if database_url.startswith("sqlite"):
        # A local file, read with the standard library: a command that ends at once leaves no
        # aiosqlite thread behind to call into its closed loop (a traceback on a loaded host).
        try:
            heads = await asyncio.to_thread(_sqlite_heads, database_url)
            state = SchemaState(heads, code_heads())
        except sqlite3.Error as error:
            return [Problem("DATABASE_URL", f"the database does not answer: {error}")]
    else:
        engine = create_engine(database_url)
        try:
            async with asyncio.timeout(DATABASE_CHECK_SECONDS):
                state = await schema_state(engine)
        except Exception as error:
            problem = f"the database does not answer: {type(error).__name__}"
            return [Problem("DATABASE_URL", problem)]
        finally:
            await engine.dispose()
    if state.behind:
        return [Problem("DATABASE_URL", state.describe())]
    if not state.current:
        return [Problem("DATABASE_URL", "the schema is ahead of this code", unsafe=False)]
    return []


def _sqlite_heads(database_url: str) -> tuple[str, ...]:
    """The revisions recorded in a SQLite file's alembic_version (none before any migration)."""
    path = make_url(database_url).database or ""
    with contextlib.closing(sqlite3.connect(path, timeout=DATABASE_CHECK_SECONDS)) as connection:
        recorded = connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
        ).fetchone()
        if recorded is None:
            return ()
        rows = connection.execute("SELECT version_num FROM alembic_version").fetchall()
    return tuple(sorted(row[0] for row in rows))


async def settings_problems(config_name: str, settings: Mapping[str, Any]) -> list[Problem]:
    """The problems of these settings, the database's included when they name one: what the
    command prints for the environment, and the admin console shows for the running app."""
    problems = configuration_problems(config_name, settings)
    url = settings.get("DATABASE_URL")
    in_memory = url in ("sqlite://", "sqlite+aiosqlite://") or ":memory:" in (url or "")
    if url and not in_memory:
        problems += await database_problems(_normalise(url))
    return problems


def check(config_name: str | None = None) -> tuple[str, list[Problem]]:
    """The configuration's name and its problems, the database's included when it has one."""
    config_name = config_name or os.environ.get("ISSUES_CONFIG") or "default"
    if config_name not in config:
        return config_name, [Problem("ISSUES_CONFIG", f"unknown; use one of {sorted(config)}")]
    try:
        settings = read_settings(config_name)
    except ConfigurationError as error:
        return config_name, [Problem("environment", str(error))]
    return config_name, asyncio.run(settings_problems(config_name, settings))
