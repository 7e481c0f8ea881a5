"""Configuration classes, picked by name; the environment is read when an app is made."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

from quart import Quart

# Known to be public: production refuses to start with it.
DEV_SECRET_KEY = "dev-only-secret-key-change-me"  # noqa: S105


class ConfigurationError(RuntimeError):
    """The configuration cannot run; the message says in one line what to set."""


def normalise_database_url(url: str) -> str:
    """Give plain PostgreSQL URLs (as platforms hand them out) the asyncpg driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    if url.startswith("sqlite://"):
        return "sqlite+aiosqlite://" + url[len("sqlite://") :]
    return url


def _as_bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


class Config:
    """Settings shared by every environment. Each key here may be overridden by the environment."""

    SECRET_KEY: str | None = DEV_SECRET_KEY
    # None means the embedded SQLite file under the app's instance folder.
    DATABASE_URL: str | None = None
    DATABASE_ECHO = False
    DATABASE_POOL_SIZE = 5

    BASE_URL = "http://127.0.0.1:5000"

    QUART_AUTH_COOKIE_SECURE = True
    QUART_AUTH_COOKIE_SAMESITE = "Lax"

    # Keys read from the environment, with the type to parse them as. .env.example lists them all.
    environment_keys: ClassVar[dict[str, type]] = {
        "SECRET_KEY": str,
        "DATABASE_URL": str,
        "DATABASE_ECHO": bool,
        "DATABASE_POOL_SIZE": int,
        "BASE_URL": str,
        "QUART_AUTH_COOKIE_SECURE": bool,
    }

    @classmethod
    def load(cls, app: Quart, overrides: dict[str, Any] | None = None) -> None:
        """Fill app.config from this class, then the environment, then explicit overrides."""
        app.config.from_object(cls)
        for key, kind in cls.environment_keys.items():
            raw = os.environ.get(key)
            if raw is None or raw == "":
                continue
            app.config[key] = _as_bool(raw) if kind is bool else kind(raw)
        app.config.update(overrides or {})
        if not app.config["DATABASE_URL"]:
            app.config["DATABASE_URL"] = cls.default_database_url(app)
        app.config["DATABASE_URL"] = normalise_database_url(app.config["DATABASE_URL"])
        cls.init_app(app)

    @staticmethod
    def default_database_url(app: Quart) -> str:
        Path(app.instance_path).mkdir(parents=True, exist_ok=True)
        return f"sqlite+aiosqlite:///{Path(app.instance_path) / 'issues.db'}"

    @classmethod
    def init_app(cls, app: Quart) -> None:
        """Check the loaded settings; a subclass refuses what it cannot run with."""


class DevelopmentConfig(Config):
    DEBUG = True
    # Development runs on plain http://127.0.0.1, where a Secure cookie is ignored by some clients.
    QUART_AUTH_COOKIE_SECURE = False


class TestingConfig(Config):
    TESTING = True
    QUART_AUTH_COOKIE_SECURE = False
    # Tests pick their database explicitly; never the developer's file.
    DATABASE_URL = "sqlite+aiosqlite://"


class ProductionConfig(Config):
    @classmethod
    def default_database_url(cls, app: Quart) -> str:
        raise ConfigurationError(
            "DATABASE_URL is not set: set it to your PostgreSQL URL, "
            "e.g. postgresql://user:password@host/issues"
        )

    @classmethod
    def init_app(cls, app: Quart) -> None:
        secret = app.config.get("SECRET_KEY")
        if not secret or secret == DEV_SECRET_KEY:
            raise ConfigurationError(
                "SECRET_KEY is missing or is the development default: set SECRET_KEY to a long "
                'random string, e.g. python -c "import secrets; print(secrets.token_urlsafe(48))"'
            )
        if len(secret) < 32:
            raise ConfigurationError("SECRET_KEY is too short: use at least 32 random characters")


config: dict[str, type[Config]] = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
    "default": DevelopmentConfig,
}
