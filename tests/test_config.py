"""The factory and its configurations, including production's refusals."""

from __future__ import annotations

import pytest

from app import create_app
from app.config import DEV_SECRET_KEY, ConfigurationError, normalise_database_url

GOOD_SECRET = "s" * 48


def test_testing_config_is_testing() -> None:
    app = create_app("testing")
    assert app.config["TESTING"] is True
    assert app.config["CONFIG_NAME"] == "testing"


def test_the_environment_picks_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ISSUES_CONFIG", "testing")
    assert create_app().config["TESTING"] is True


def test_an_unknown_config_name_is_refused() -> None:
    with pytest.raises(ValueError, match="Unknown configuration"):
        create_app("staging")


def test_development_defaults_to_a_sqlite_file_in_the_instance_folder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    app = create_app("development")
    assert app.config["DEBUG"] is True
    assert app.config["DATABASE_URL"].startswith("sqlite+aiosqlite:///")
    assert app.config["DATABASE_URL"].endswith("instance/issues.db")


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({"DATABASE_URL": "postgresql://db/issues"}, "SECRET_KEY is missing"),
        ({"DATABASE_URL": "postgresql://db/issues", "SECRET_KEY": DEV_SECRET_KEY}, "SECRET_KEY"),
        ({"DATABASE_URL": "postgresql://db/issues", "SECRET_KEY": "short"}, "too short"),
        ({"SECRET_KEY": GOOD_SECRET}, "DATABASE_URL is not set"),
    ],
)
def test_production_refuses_an_unsafe_configuration(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], message: str
) -> None:
    for name in ("SECRET_KEY", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=message) as refusal:
        create_app("production")
    assert "\n" not in str(refusal.value)


def test_production_starts_when_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_KEY", GOOD_SECRET)
    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@db.internal/issues")
    app = create_app("production")
    assert app.config["DATABASE_URL"] == "postgresql+asyncpg://u:p@db.internal/issues"
    assert app.config["QUART_AUTH_COOKIE_SECURE"] is True
    assert not app.config["DEBUG"]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgresql://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("sqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db"),
    ],
)
def test_database_urls_get_an_async_driver(given: str, expected: str) -> None:
    assert normalise_database_url(given) == expected


def test_env_example_documents_every_variable_the_app_reads() -> None:
    from pathlib import Path

    from app.config import Config

    example = (Path(__file__).parents[1] / ".env.example").read_text()
    documented = {
        line.lstrip("# ").split("=", 1)[0]
        for line in example.splitlines()
        if "=" in line and line.lstrip("# ").split("=", 1)[0].isupper()
    }
    assert set(Config.environment_keys) | {"ISSUES_CONFIG"} <= documented


@pytest.mark.parametrize(
    ("settings", "rp_id", "origin"),
    [
        (
            {"BASE_URL": "https://issues.example.com/"},
            "issues.example.com",
            "https://issues.example.com",
        ),
        ({"BASE_URL": "http://localhost:5000"}, "localhost", "http://localhost:5000"),
        # An IP address is no relying party id: passkeys are off.
        ({"BASE_URL": "http://127.0.0.1:5000"}, "", "http://127.0.0.1:5000"),
        (
            {"BASE_URL": "https://issues.example.com", "WEBAUTHN_RP_ID": "Example.com"},
            "example.com",
            "https://issues.example.com",
        ),
        (
            {"BASE_URL": "http://10.0.0.5", "WEBAUTHN_ORIGIN": "https://issues.example.com"},
            "issues.example.com",
            "https://issues.example.com",
        ),
    ],
)
def test_the_passkeys_relying_party_comes_from_base_url_unless_set(
    settings: dict, rp_id: str, origin: str
) -> None:
    app = create_app("testing", **settings)
    assert (app.config["WEBAUTHN_RP_ID"], app.config["WEBAUTHN_ORIGIN"]) == (rp_id, origin)


@pytest.mark.parametrize(
    "settings",
    [
        {"BASE_URL": "https://issues.example.com", "WEBAUTHN_RP_ID": "evil.com"},
        {"BASE_URL": "https://issues.example.com", "WEBAUTHN_RP_ID": "ample.com"},
        {"BASE_URL": "https://issues.example.com", "WEBAUTHN_RP_ID": "203.0.113.9"},
        {"WEBAUTHN_ORIGIN": "issues.example.com"},
        {"WEBAUTHN_ORIGIN": "https://issues.example.com/app"},
    ],
)
def test_a_passkeys_relying_party_that_cannot_work_is_refused(settings: dict) -> None:
    with pytest.raises(ConfigurationError, match="WEBAUTHN_"):
        create_app("testing", **settings)
