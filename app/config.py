"""Configuration classes, picked by name; the environment is read when an app is made."""

from __future__ import annotations

import ipaddress
import os
import tempfile
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

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


def check_single_sign_on(config: dict[str, Any]) -> None:
    """Refuse an OpenID Connect setting that cannot work, naming what to set."""
    issuer = config["OIDC_ISSUER"] = config["OIDC_ISSUER"].strip().rstrip("/")
    if not issuer:
        if config["OIDC_SSO_ONLY_DOMAINS"].strip():
            raise ConfigurationError("OIDC_SSO_ONLY_DOMAINS needs OIDC_ISSUER (the provider)")
        return
    if not issuer.startswith(("https://", "http://")):
        raise ConfigurationError("OIDC_ISSUER must be the provider's https:// URL")
    if not config["OIDC_CLIENT_ID"] or not config["OIDC_CLIENT_SECRET"]:
        raise ConfigurationError(
            "OIDC_ISSUER is set: set OIDC_CLIENT_ID and OIDC_CLIENT_SECRET too (from the "
            "provider's registration of this app)"
        )
    if "openid" not in config["OIDC_SCOPES"].split():
        raise ConfigurationError("OIDC_SCOPES must include openid")
    if not config["OIDC_PROVIDER_NAME"].strip():
        raise ConfigurationError("OIDC_PROVIDER_NAME must not be empty (it is the button's text)")


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def relying_party(base_url: str, rp_id: str, origin: str) -> tuple[str, str]:
    """The passkeys' relying party id and origin: the ones given, or BASE_URL's. The id is ""
    (passkeys off) when it would be an IP address, which WebAuthn does not accept. Raises
    ConfigurationError for an origin that is not one, or an id its host is not within."""
    origin = (origin or base_url).strip().rstrip("/")
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path or parts.query:
        raise ConfigurationError(
            f"WEBAUTHN_ORIGIN={origin!r} is not an origin: give scheme, host and port only, "
            "e.g. https://issues.example.com"
        )
    origin = f"{parts.scheme}://{parts.netloc.lower()}"
    host = parts.hostname.lower()
    rp_id = rp_id.strip().lower()
    if not rp_id:
        return ("" if _is_address(host) else host), origin
    if _is_address(rp_id) or not (host == rp_id or host.endswith("." + rp_id)):
        raise ConfigurationError(
            f"WEBAUTHN_RP_ID={rp_id!r} must be the origin's host {host!r} or a parent domain of it"
        )
    return rp_id, origin


class Config:
    """Settings shared by every environment. Each key here may be overridden by the environment."""

    SECRET_KEY: str | None = DEV_SECRET_KEY
    # None means the embedded SQLite file under the app's instance folder.
    DATABASE_URL: str | None = None
    DATABASE_ECHO = False
    # PostgreSQL connections per worker: kept open, and opened beyond that under a burst (and
    # closed after use). A request holds one until it ends, and opening one costs PostgreSQL a
    # process: a pool smaller than the requests in flight halved the throughput (bench.load).
    # workers x (size + overflow) + workers (the listeners) must fit max_connections (100).
    DATABASE_POOL_SIZE = 15
    DATABASE_MAX_OVERFLOW = 5

    BASE_URL = "http://127.0.0.1:5000"
    # Request bodies larger than this are refused with 413.
    MAX_CONTENT_LENGTH = 2 * 1024 * 1024

    # Accounts. Who may sign up: open (anyone), closed (admins create accounts), or domains
    # (addresses of SIGNUP_DOMAINS only, a comma-separated list).
    SIGNUP_MODE = "open"
    SIGNUP_DOMAINS = ""
    PASSWORD_HASH_PROFILE = "default"  # noqa: S105  ("cheapest" in tests only)
    AUTH_SESSION_IDLE_SECONDS = 24 * 3600
    AUTH_SESSION_MAX_SECONDS = 3 * 24 * 3600
    AUTH_REMEMBER_IDLE_SECONDS = 14 * 24 * 3600
    AUTH_REMEMBER_MAX_SECONDS = 30 * 24 * 3600
    # Single sign-on with OpenID Connect (decision 0025): off while OIDC_ISSUER is empty. The
    # provider's redirect URI for this app is BASE_URL + /auth/oidc/callback. People whose
    # address is at one of OIDC_SSO_ONLY_DOMAINS (comma-separated) must sign in through the
    # provider: password login and password reset are refused for them.
    OIDC_ISSUER = ""
    OIDC_CLIENT_ID = ""
    OIDC_CLIENT_SECRET = ""
    OIDC_PROVIDER_NAME = "single sign-on"
    OIDC_SCOPES = "openid email profile"
    OIDC_SSO_ONLY_DOMAINS = ""
    # Seconds to wait for the provider, and to keep its discovery document and keys.
    OIDC_TIMEOUT = 10.0
    OIDC_METADATA_SECONDS = 3600
    # Per-client limits on login, sign-up and reset requests (off only in some tests).
    RATE_LIMIT_ENABLED = True
    # Failed logins from one client address, per account and in all, per window. Successes
    # never count, and the ceiling for the address is high: people behind one office's NAT or
    # proxy must not lock each other out. Each account also waits longer after each failure.
    LOGIN_FAILURES_PER_ADDRESS_AND_ACCOUNT = 10
    LOGIN_FAILURES_PER_ADDRESS = 100
    LOGIN_FAILURE_WINDOW_SECONDS = 900
    # The JSON API: requests per window per token (or logged-in user), and per client address
    # for anonymous reads; counted in the database, so shared by every worker.
    API_RATE_LIMIT = 600
    API_ANONYMOUS_RATE_LIMIT = 120
    API_RATE_LIMIT_WINDOW_SECONDS = 60
    # API request bodies larger than this are refused with 413 (pages keep MAX_CONTENT_LENGTH).
    API_MAX_BODY_BYTES = 1024 * 1024
    # How many reverse proxies stand in front of the app; their X-Forwarded-For is trusted.
    # 0 (the default) trusts no forwarded header: the client is the peer address.
    TRUST_PROXY_COUNT = 0
    # Only peers at these addresses (comma-separated IPs or networks, or *) may send forwarded
    # headers at all; from anyone else they are dropped before the app sees them.
    TRUST_PROXY_ADDRESSES = "127.0.0.1,::1"
    # /metrics (Prometheus, decision 0026) answers only clients at these addresses or networks
    # (comma-separated; the client as TRUST_PROXY_COUNT finds it); everyone else gets a 404.
    METRICS_ALLOW = "127.0.0.1,::1"
    # Where the workers keep their counts for the scrape (empty: the system's temporary folder).
    METRICS_DIR = ""

    # Attachments (decision 0020): "local" keeps files under ATTACHMENT_DIR (empty: the
    # instance folder's attachments/); "s3" keeps them in ATTACHMENT_S3_BUCKET of an
    # S3-compatible store (credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), and
    # stages uploads under ATTACHMENT_STAGING_DIR (empty: the system's temporary folder).
    ATTACHMENT_STORAGE = "local"
    ATTACHMENT_DIR = ""
    ATTACHMENT_MAX_BYTES = 25 * 1024 * 1024
    ATTACHMENT_S3_BUCKET = ""
    ATTACHMENT_S3_ENDPOINT_URL = ""
    ATTACHMENT_S3_REGION = ""
    ATTACHMENT_STAGING_DIR = ""

    # Logs: "json" (one object per line) or "text"; to stdout, where the platform collects them.
    LOG_FORMAT = "text"
    LOG_LEVEL = "INFO"
    LOG_TO_STDOUT = True

    # Passkeys (decision 0024). The relying party id is a domain, the host of BASE_URL unless
    # set (the parent domain is allowed too); the origin is what browsers must report, BASE_URL's
    # scheme, host and port unless set. An address such as 127.0.0.1 is no domain: with it,
    # passkeys are off (open the site at http://localhost:5000 in development).
    WEBAUTHN_RP_ID = ""
    WEBAUTHN_ORIGIN = ""

    QUART_AUTH_COOKIE_NAME = "issues_auth"
    QUART_AUTH_COOKIE_SECURE = True
    QUART_AUTH_COOKIE_SAMESITE = "Lax"
    QUART_AUTH_SALT = "issues.auth-cookie"
    SESSION_COOKIE_NAME = "issues_session"
    SESSION_COOKIE_SAMESITE = "Lax"

    # Mail. "log" prints each message to the log (development's default, no SMTP needed);
    # "smtp" sends through MAIL_HOST.
    MAIL_BACKEND = "smtp"
    MAIL_HOST = "localhost"
    MAIL_PORT = 25
    MAIL_USERNAME = ""
    MAIL_PASSWORD = ""
    MAIL_USE_TLS = False  # implicit TLS (port 465); STARTTLS is used whenever offered
    MAIL_SENDER = "Issues <no-reply@localhost>"
    MAIL_TIMEOUT = 10
    MAIL_MAX_ATTEMPTS = 8
    MAIL_POLL_SECONDS = 5.0
    MAIL_SEND_IN_BACKGROUND = True
    # Live streams: heartbeat comment interval, how often access is checked again, the
    # reconnect hint for browsers, and how many events may wait for one slow client.
    SSE_HEARTBEAT_SECONDS = 15.0
    SSE_RECHECK_SECONDS = 30.0
    SSE_RETRY_MILLISECONDS = 3000
    SSE_QUEUE_SIZE = 256
    SSE_REPLAY_LIMIT = 1000
    # After start-up, move the objects made so far out of the garbage collector's sight
    # (gc.freeze): full collections then walk only what came later (decision 0014).
    GC_FREEZE_AFTER_START = True

    # Rendered page parts kept per worker (decision 0012): their total size, and the age after
    # which one is made again even if its project has not changed (people's names, links to
    # other projects' issues).
    PAGE_CACHE_BYTES = 32 * 1024 * 1024
    PAGE_CACHE_SECONDS = 60.0

    # Watchers' mail is sent once a burst of changes has been quiet this long, or once its first
    # change is this old.
    NOTIFY_QUIET_SECONDS = 120
    NOTIFY_LONGEST_WAIT_SECONDS = 900

    # Webhooks (decision 0011). Hooks may not point at loopback, link-local, private or reserved
    # addresses, nor at BASE_URL's host, unless WEBHOOK_ALLOW_PRIVATE_TARGETS is on.
    WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    WEBHOOK_TIMEOUT = 10.0
    WEBHOOK_MAX_ATTEMPTS = 8
    WEBHOOK_POLL_SECONDS = 5.0
    # Retries back off from the first delay, doubling, up to the last.
    WEBHOOK_FIRST_RETRY_SECONDS = 30.0
    WEBHOOK_LAST_RETRY_SECONDS = 3600.0
    WEBHOOK_SEND_IN_BACKGROUND = True

    # Imports (decision 0029): uploaded exports wait in IMPORT_DIR (empty: the instance folder's
    # imports/; every worker must see it), a runner claims a job for IMPORT_LEASE_SECONDS at a
    # time (renewed as it goes) and looks for queued jobs every IMPORT_POLL_SECONDS.
    IMPORT_DIR = ""
    IMPORT_LEASE_SECONDS = 300.0
    IMPORT_POLL_SECONDS = 5.0
    IMPORT_RUN_IN_BACKGROUND = True

    # Keys read from the environment, with the type to parse them as. .env.example lists them all.
    environment_keys: ClassVar[dict[str, type]] = {
        "SECRET_KEY": str,
        "DATABASE_URL": str,
        "DATABASE_ECHO": bool,
        "DATABASE_POOL_SIZE": int,
        "DATABASE_MAX_OVERFLOW": int,
        "BASE_URL": str,
        "QUART_AUTH_COOKIE_SECURE": bool,
        "WEBAUTHN_RP_ID": str,
        "WEBAUTHN_ORIGIN": str,
        "SIGNUP_MODE": str,
        "SIGNUP_DOMAINS": str,
        "OIDC_ISSUER": str,
        "OIDC_CLIENT_ID": str,
        "OIDC_CLIENT_SECRET": str,
        "OIDC_PROVIDER_NAME": str,
        "OIDC_SCOPES": str,
        "OIDC_SSO_ONLY_DOMAINS": str,
        "OIDC_TIMEOUT": float,
        "OIDC_METADATA_SECONDS": int,
        "AUTH_SESSION_IDLE_SECONDS": int,
        "AUTH_SESSION_MAX_SECONDS": int,
        "AUTH_REMEMBER_IDLE_SECONDS": int,
        "AUTH_REMEMBER_MAX_SECONDS": int,
        "TRUST_PROXY_COUNT": int,
        "TRUST_PROXY_ADDRESSES": str,
        "METRICS_ALLOW": str,
        "METRICS_DIR": str,
        "LOG_FORMAT": str,
        "ATTACHMENT_STORAGE": str,
        "ATTACHMENT_DIR": str,
        "ATTACHMENT_MAX_BYTES": int,
        "ATTACHMENT_S3_BUCKET": str,
        "ATTACHMENT_S3_ENDPOINT_URL": str,
        "ATTACHMENT_S3_REGION": str,
        "ATTACHMENT_STAGING_DIR": str,
        "LOG_LEVEL": str,
        "LOGIN_FAILURES_PER_ADDRESS_AND_ACCOUNT": int,
        "LOGIN_FAILURES_PER_ADDRESS": int,
        "LOGIN_FAILURE_WINDOW_SECONDS": int,
        "API_RATE_LIMIT": int,
        "API_ANONYMOUS_RATE_LIMIT": int,
        "API_RATE_LIMIT_WINDOW_SECONDS": int,
        "MAIL_BACKEND": str,
        "MAIL_HOST": str,
        "MAIL_PORT": int,
        "MAIL_USERNAME": str,
        "MAIL_PASSWORD": str,
        "MAIL_USE_TLS": bool,
        "MAIL_SENDER": str,
        "MAIL_TIMEOUT": int,
        "MAIL_MAX_ATTEMPTS": int,
        "MAIL_POLL_SECONDS": float,
        "SSE_HEARTBEAT_SECONDS": float,
        "SSE_RECHECK_SECONDS": float,
        "SSE_RETRY_MILLISECONDS": int,
        "SSE_QUEUE_SIZE": int,
        "SSE_REPLAY_LIMIT": int,
        "GC_FREEZE_AFTER_START": bool,
        "PAGE_CACHE_BYTES": int,
        "PAGE_CACHE_SECONDS": float,
        "NOTIFY_QUIET_SECONDS": int,
        "NOTIFY_LONGEST_WAIT_SECONDS": int,
        "WEBHOOK_ALLOW_PRIVATE_TARGETS": bool,
        "WEBHOOK_TIMEOUT": float,
        "WEBHOOK_MAX_ATTEMPTS": int,
        "WEBHOOK_POLL_SECONDS": float,
        "WEBHOOK_FIRST_RETRY_SECONDS": float,
        "WEBHOOK_LAST_RETRY_SECONDS": float,
        "IMPORT_DIR": str,
        "IMPORT_LEASE_SECONDS": float,
        "IMPORT_POLL_SECONDS": float,
        "IMPORT_RUN_IN_BACKGROUND": bool,
    }

    @classmethod
    def load(cls, app: Quart, overrides: dict[str, Any] | None = None) -> None:
        """Fill app.config from this class, then the environment, then explicit overrides."""
        app.config.from_object(cls)
        app.config.update(cls.from_environment())
        app.config.update(overrides or {})
        if not app.config["DATABASE_URL"]:
            app.config["DATABASE_URL"] = cls.default_database_url(app)
        app.config["DATABASE_URL"] = normalise_database_url(app.config["DATABASE_URL"])
        # One switch for both cookies: the login cookie and the signed session (CSRF token).
        app.config["SESSION_COOKIE_SECURE"] = app.config["QUART_AUTH_COOKIE_SECURE"]
        app.config["QUART_AUTH_DURATION"] = app.config["AUTH_REMEMBER_MAX_SECONDS"]
        app.config["BASE_URL"] = app.config["BASE_URL"].rstrip("/")
        if app.config["SIGNUP_MODE"] not in ("open", "closed", "domains"):
            raise ConfigurationError("SIGNUP_MODE must be open, closed or domains")
        check_single_sign_on(app.config)
        if app.config["MAIL_BACKEND"] not in ("smtp", "log"):
            raise ConfigurationError("MAIL_BACKEND must be smtp or log")
        if app.config["LOG_FORMAT"] not in ("json", "text"):
            raise ConfigurationError("LOG_FORMAT must be json or text")
        if app.config["ATTACHMENT_STORAGE"] not in ("local", "s3"):
            raise ConfigurationError("ATTACHMENT_STORAGE must be local or s3")
        if app.config["ATTACHMENT_STORAGE"] == "s3" and not app.config["ATTACHMENT_S3_BUCKET"]:
            raise ConfigurationError("ATTACHMENT_STORAGE=s3 needs ATTACHMENT_S3_BUCKET")
        app.config["WEBAUTHN_RP_ID"], app.config["WEBAUTHN_ORIGIN"] = relying_party(
            app.config["BASE_URL"], app.config["WEBAUTHN_RP_ID"], app.config["WEBAUTHN_ORIGIN"]
        )
        cls.init_app(app)

    @classmethod
    def from_environment(cls) -> dict[str, Any]:
        """The values the environment sets for environment_keys, parsed (unset or empty: left
        out). Raises ConfigurationError for a value that does not parse."""
        values: dict[str, Any] = {}
        for key, kind in cls.environment_keys.items():
            raw = os.environ.get(key)
            if raw is None or raw == "":
                continue
            try:
                values[key] = _as_bool(raw) if kind is bool else kind(raw)
            except ValueError as error:
                raise ConfigurationError(f"{key}={raw!r} is not a valid {kind.__name__}") from error
        return values

    @staticmethod
    def default_database_url(app: Quart) -> str:
        Path(app.instance_path).mkdir(parents=True, exist_ok=True)
        return f"sqlite+aiosqlite:///{Path(app.instance_path) / 'issues.db'}"

    @classmethod
    def init_app(cls, app: Quart) -> None:
        """Check the loaded settings; a subclass refuses what it cannot run with."""


class DevelopmentConfig(Config):
    DEBUG = True
    MAIL_BACKEND = "log"
    # Development runs on plain http://127.0.0.1, where a Secure cookie is ignored by some clients.
    QUART_AUTH_COOKIE_SECURE = False


class TestingConfig(Config):
    TESTING = True
    QUART_AUTH_COOKIE_SECURE = False
    PASSWORD_HASH_PROFILE = "cheapest"  # noqa: S105
    # On, but out of the way: the tests of the limits set low ones.
    API_RATE_LIMIT = 100_000
    API_ANONYMOUS_RATE_LIMIT = 100_000
    # Tests deliver the outbox when they choose to, so what they see is deterministic.
    MAIL_SEND_IN_BACKGROUND = False
    # pytest captures the log records itself.
    LOG_TO_STDOUT = False
    MAIL_TIMEOUT = 3
    # Like mail: tests send webhook deliveries when they choose to.
    WEBHOOK_SEND_IN_BACKGROUND = False
    WEBHOOK_TIMEOUT = 3.0
    # Like mail: tests run queued imports when they choose to.
    IMPORT_RUN_IN_BACKGROUND = False
    # Tests pick their database explicitly; never the developer's file.
    DATABASE_URL = "sqlite+aiosqlite://"
    # A test process starts hundreds of apps: a full collection at each start costs more than
    # it saves (the benchmarks turn it on, as production has it).
    GC_FREEZE_AFTER_START = False

    @classmethod
    def init_app(cls, app: Quart) -> None:
        # Never the checkout's instance folder: one folder per test process unless a test picks.
        if not app.config["ATTACHMENT_DIR"]:
            folder = Path(tempfile.gettempdir()) / f"issues-test-attachments-{os.getpid()}"
            app.config["ATTACHMENT_DIR"] = str(folder)


class ProductionConfig(Config):
    LOG_FORMAT = "json"

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
        if app.config["OIDC_ISSUER"].startswith("http://"):
            # Discovery, keys and the code exchange would travel in the clear.
            raise ConfigurationError("OIDC_ISSUER must be an https:// URL in production")
        if app.config["MAIL_BACKEND"] == "log":
            # The log would hold reset and confirmation links: credentials.
            raise ConfigurationError("MAIL_BACKEND=log is for development: set MAIL_BACKEND=smtp")


config: dict[str, type[Config]] = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
    "default": DevelopmentConfig,
}
