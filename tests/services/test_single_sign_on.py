"""Single sign-on's service: the ID token's checks against keys of the test's own (forged,
expired, for someone else), the provider's keys fetched again on rotation, and the account an
identity signs in to, on both databases."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, OctKey, RSAKey
from quart import Quart
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app import create_app
from app.config import ConfigurationError
from app.models import AuditEvent, ExternalIdentity, User
from app.services import audit
from app.services.accounts import AccountSettings
from app.services.single_sign_on import (
    OpenIDProvider,
    PendingLogin,
    ProviderIdentity,
    SsoRefused,
    SsoSettings,
    password_refusal,
    validate_id_token,
)
from app.services.sso_accounts import account_for_identity
from tests.factories import make_user
from tests.services.rows import count, rows_of

ISSUER = "https://id.example.com"
CLIENT_ID = "issues"
NONCE = "n-0S6_WzA2Mj"
SIGNING_KEY = RSAKey.generate_key(2048, parameters={"kid": "key-1"})
# Another key under the same name: what a forger who knows our provider's kid would sign with.
FORGED_KEY = RSAKey.generate_key(2048, parameters={"kid": "key-1"})
PROVIDER_KEYS = KeySet.import_key_set({"keys": [SIGNING_KEY.as_dict(private=False)]})


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": ISSUER,
        "sub": "248289761001",
        "aud": CLIENT_ID,
        "exp": now + 300,
        "iat": now,
        "nonce": NONCE,
        "email": "ann@example.com",
        "email_verified": True,
    }
    base.update(changes)
    return {key: value for key, value in base.items() if value is not None}


def id_token(key: Any = SIGNING_KEY, alg: str = "RS256", kid: str = "key-1", **changes: Any) -> str:
    return jwt.encode({"alg": alg, "kid": kid}, claims(**changes), key)


def check(token: str, keys: KeySet = PROVIDER_KEYS, **expected: Any) -> dict[str, Any]:
    return validate_id_token(
        token,
        keys,
        issuer=expected.get("issuer", ISSUER),
        client_id=CLIENT_ID,
        nonce=expected.get("nonce", NONCE),
    )


# --- The ID token ---------------------------------------------------------------------------------


def test_a_good_id_token_gives_its_claims() -> None:
    checked = check(id_token())
    assert (checked["sub"], checked["email"], checked["email_verified"]) == (
        "248289761001",
        "ann@example.com",
        True,
    )


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (lambda: id_token(key=FORGED_KEY), "bad_signature"),
        (lambda: id_token(kid="key-2", key=RSAKey.generate_key(2048)), "unknown_key"),
        (lambda: id_token(aud="another-app"), "bad_claim:aud"),
        (lambda: id_token(aud=["another-app"]), "bad_claim:aud"),
        (lambda: id_token(iss="https://evil.example.com"), "bad_claim:iss"),
        (lambda: id_token(exp=int(time.time()) - 120, iat=int(time.time()) - 900), "expired_token"),
        (lambda: id_token(nonce="another-nonce"), "nonce_mismatch"),
        (lambda: id_token(nonce=None), "nonce_mismatch"),
        (
            lambda: id_token(iat=int(time.time()) + 3600, exp=int(time.time()) + 7200),
            "bad_claim:iat",
        ),
        (lambda: id_token(sub=None), "bad_claim:sub"),
        (lambda: id_token(exp=None), "bad_claim:exp"),
        # Several audiences: the authorized party must be named, and be us.
        (lambda: id_token(aud=[CLIENT_ID, "other"]), "bad_claim:azp"),
        (lambda: id_token(aud=[CLIENT_ID, "other"], azp="other"), "bad_claim:azp"),
        # Signed with a shared secret (ours would do): only the provider's keys count.
        (lambda: id_token(key=OctKey.import_key(b"s" * 32), alg="HS256"), "bad_signature"),
    ],
    ids=[
        "forged signature",
        "unknown key",
        "another audience",
        "another audience in a list",
        "another issuer",
        "expired",
        "another nonce",
        "no nonce",
        "issued in the future",
        "no subject",
        "no expiry",
        "several audiences without azp",
        "several audiences, azp another",
        "HS256",
    ],
)
def test_an_id_token_that_does_not_check_out_is_refused(token: Any, reason: str) -> None:
    with pytest.raises(SsoRefused) as refusal:
        check(token())
    assert refusal.value.reason.startswith(reason.split(":")[0])
    assert refusal.value.reason == reason


def test_an_unsigned_token_is_refused() -> None:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    unsigned = f"{part({'alg': 'none', 'kid': 'key-1'})}.{part(claims())}."
    with pytest.raises(SsoRefused) as refusal:
        check(unsigned)
    assert refusal.value.reason == "bad_signature"


def test_several_audiences_with_us_as_the_authorized_party_pass() -> None:
    assert check(id_token(aud=[CLIENT_ID, "other"], azp=CLIENT_ID))["sub"] == "248289761001"


def test_a_small_clock_difference_is_tolerated() -> None:
    now = int(time.time())
    assert check(id_token(exp=now - 20, iat=now - 320))["sub"]
    assert check(id_token(iat=now + 20))["sub"]


# --- The provider's documents, over real HTTP -----------------------------------------------------


class ScriptedProvider:
    """A provider's discovery, JWKS, token and userinfo endpoints on a real loopback server,
    answering what the test scripts (keys that rotate, a token, a profile)."""

    def __init__(self) -> None:
        self.keys: list[RSAKey] = [SIGNING_KEY]
        self.id_token = ""
        self.userinfo: dict[str, Any] = {}
        self.hits: list[str] = []
        self.discovery_issuer: str | None = None
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                provider.hits.append(self.path)
                if self.path == "/.well-known/openid-configuration":
                    self._answer(provider.discovery())
                elif self.path == "/jwks":
                    self._answer({"keys": [key.as_dict(private=False) for key in provider.keys]})
                elif self.path == "/userinfo":
                    self._answer(provider.userinfo)
                else:
                    self.send_error(404)

            def do_POST(self) -> None:
                provider.hits.append(self.path)
                self.rfile.read(int(self.headers["Content-Length"]))
                self._answer(
                    {"access_token": "at", "token_type": "Bearer", "id_token": provider.id_token}
                )

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.discovery_issuer or self.issuer,
            "authorization_endpoint": f"{self.issuer}/auth",
            "token_endpoint": f"{self.issuer}/token",
            "userinfo_endpoint": f"{self.issuer}/userinfo",
            "jwks_uri": f"{self.issuer}/jwks",
            "id_token_signing_alg_values_supported": ["RS256"],
        }

    def settings(self, **changes: Any) -> SsoSettings:
        values = {
            "issuer": self.issuer,
            "client_id": CLIENT_ID,
            "client_secret": "secret",
            "provider_name": "Example ID",
            "redirect_uri": "http://issues.test/auth/oidc/callback",
            "timeout": 3.0,
            **changes,
        }
        return SsoSettings(**values)


@pytest.fixture
def scripted() -> Iterator[ScriptedProvider]:
    provider = ScriptedProvider()
    provider.thread.start()
    yield provider
    provider.server.shutdown()
    provider.server.server_close()


async def finish_with(
    provider: OpenIDProvider, scripted: ScriptedProvider, key: RSAKey = SIGNING_KEY, **changes: Any
) -> ProviderIdentity:
    _, pending = await provider.begin("/")
    scripted.id_token = jwt.encode(
        {"alg": "RS256", "kid": key.kid},
        claims(iss=scripted.issuer, nonce=pending.nonce, **changes),
        key,
    )
    return await provider.finish(pending, {"state": pending.state, "code": "c0de"})


async def test_discovery_and_keys_are_fetched_once_and_kept(scripted: ScriptedProvider) -> None:
    provider = OpenIDProvider(scripted.settings())
    try:
        for _ in range(3):
            identity = await finish_with(provider, scripted)
        assert identity.email == "ann@example.com" and identity.email_verified
        assert scripted.hits.count("/.well-known/openid-configuration") == 1
        assert scripted.hits.count("/jwks") == 1
        assert scripted.hits.count("/token") == 3
    finally:
        await provider.close()


async def test_the_documents_are_fetched_again_after_their_lifetime(
    scripted: ScriptedProvider,
) -> None:
    provider = OpenIDProvider(scripted.settings(metadata_seconds=0))
    try:
        await finish_with(provider, scripted)
        await finish_with(provider, scripted)
        assert scripted.hits.count("/.well-known/openid-configuration") >= 2
        assert scripted.hits.count("/jwks") >= 2
    finally:
        await provider.close()


async def test_a_rotated_key_is_fetched_once_on_an_unknown_kid(
    scripted: ScriptedProvider,
) -> None:
    provider = OpenIDProvider(scripted.settings())
    try:
        await finish_with(provider, scripted)
        rotated = RSAKey.generate_key(2048, parameters={"kid": "key-2"})
        scripted.keys = [rotated]
        identity = await finish_with(provider, scripted, key=rotated)
        assert identity.subject == "248289761001"
        assert scripted.hits.count("/jwks") == 2
        # A kid the provider does not publish at all: refused after one more look.
        stranger = RSAKey.generate_key(2048, parameters={"kid": "key-3"})
        with pytest.raises(SsoRefused) as refusal:
            await finish_with(provider, scripted, key=stranger)
        assert refusal.value.reason == "unknown_key"
        assert scripted.hits.count("/jwks") == 3
    finally:
        await provider.close()


async def test_the_address_comes_from_userinfo_when_the_id_token_lacks_it(
    scripted: ScriptedProvider,
) -> None:
    provider = OpenIDProvider(scripted.settings())
    scripted.userinfo = {"sub": "248289761001", "email": "Ann@Example.com", "email_verified": True}
    try:
        identity = await finish_with(provider, scripted, email=None, email_verified=None)
        assert (identity.email, identity.email_verified) == ("Ann@Example.com", True)
        # A profile for another subject is not used.
        scripted.userinfo = {"sub": "someone-else", "email": "eve@example.com"}
        with pytest.raises(SsoRefused) as refusal:
            await finish_with(provider, scripted, email=None)
        assert refusal.value.reason == "bad_userinfo"
    finally:
        await provider.close()


async def test_a_discovery_document_for_another_issuer_is_refused(
    scripted: ScriptedProvider,
) -> None:
    scripted.discovery_issuer = "https://evil.example.com"
    provider = OpenIDProvider(scripted.settings())
    try:
        with pytest.raises(SsoRefused) as refusal:
            await provider.begin("/")
        assert refusal.value.reason == "issuer_mismatch"
    finally:
        await provider.close()


async def test_a_callback_naming_another_issuer_or_a_stale_login_is_refused(
    scripted: ScriptedProvider,
) -> None:
    provider = OpenIDProvider(scripted.settings())
    try:
        _, pending = await provider.begin("/")
        answer = {"state": pending.state, "code": "c", "iss": "https://evil.example.com"}
        with pytest.raises(SsoRefused) as refusal:
            await provider.finish(pending, answer)
        assert refusal.value.reason == "issuer_mismatch"
        stale = PendingLogin(**{**pending.as_dict(), "started_at": int(time.time()) - 3600})
        with pytest.raises(SsoRefused) as refusal:
            await provider.finish(stale, {"state": stale.state, "code": "c"})
        assert refusal.value.reason == "expired"
        assert "/token" not in scripted.hits
    finally:
        await provider.close()


# --- The account an identity signs in to ----------------------------------------------------------

SSO = SsoSettings(
    issuer=ISSUER,
    client_id=CLIENT_ID,
    client_secret="secret",
    provider_name="Example ID",
    redirect_uri="http://issues.test/auth/oidc/callback",
)
ORIGIN = audit.Origin("203.0.113.9", "Firefox")


def identity(**changes: Any) -> ProviderIdentity:
    values = {
        "issuer": ISSUER,
        "subject": "sub-1",
        "email": "ann@example.com",
        "email_verified": True,
        "name": "Ann Example",
        **changes,
    }
    return ProviderIdentity(**values)


async def test_a_known_subject_signs_in_to_its_account_whatever_its_address_now(
    session: AsyncSession, account_settings: AccountSettings
) -> None:
    ann = await account_for_identity(session, account_settings, SSO, identity(), origin=ORIGIN)
    # The provider changed her address since: the subject, not the address, finds her.
    again = await account_for_identity(
        session, account_settings, SSO, identity(email="ann@new.example"), origin=ORIGIN
    )
    assert again.id == ann.id and again.email == "ann@example.com"
    assert await count(session, User) == 1
    assert [event.action for event in await rows_of(session, AuditEvent)] == [
        "account.signed_up",
        "sso.linked",
        "sso.login",
        "sso.login",
    ]
    events = await rows_of(session, AuditEvent)
    assert events[-1].detail == {"issuer": ISSUER, "provider_subject": "sub-1"}
    assert events[-1].client_address == "203.0.113.9"


async def test_the_same_subject_at_another_issuer_is_another_identity(
    session: AsyncSession, account_settings: AccountSettings
) -> None:
    await account_for_identity(session, account_settings, SSO, identity())
    with pytest.raises(SsoRefused):
        # Same subject, another issuer, unverified address: nothing to link it to.
        await account_for_identity(
            session,
            account_settings,
            SSO,
            identity(issuer="https://other.example.com", email_verified=False),
        )
    assert await count(session, ExternalIdentity) == 1


async def test_a_new_account_gets_a_handle_like_sign_up_does(
    session: AsyncSession, account_settings: AccountSettings
) -> None:
    taken = await make_user(session, email="x@example.com")
    session.add(taken)
    taken.handle = "ann"
    await session.commit()
    user = await account_for_identity(session, account_settings, SSO, identity(name=""))
    assert user.handle == "ann2"
    assert user.display_name == "ann"  # no name from the provider: the address's local part
    assert user.password_hash is None and user.email_verified_at is not None


async def test_an_unverified_address_writes_nothing(
    session: AsyncSession, account_settings: AccountSettings
) -> None:
    await make_user(session, email="ann@example.com")
    with pytest.raises(SsoRefused) as refusal:
        await account_for_identity(session, account_settings, SSO, identity(email_verified=False))
    assert refusal.value.reason == "unverified_email"
    assert await count(session, ExternalIdentity) == 0
    assert await count(session, AuditEvent) == 0


async def test_closed_sign_up_refuses_a_new_account_and_links_an_existing_one(
    app: Quart, session: AsyncSession, account_settings: AccountSettings
) -> None:
    closed = AccountSettings(**{**account_settings.__dict__, "signup_mode": "closed"})
    with pytest.raises(SsoRefused) as refusal:
        await account_for_identity(session, closed, SSO, identity())
    assert refusal.value.reason == "signup_refused"
    assert "Sign-up is closed" in refusal.value.message
    assert await count(session, User) == 0
    ann = await make_user(session, email="ann@example.com", validated=False)
    user = await account_for_identity(session, closed, SSO, identity())
    assert user.id == ann.id and user.email_verified_at is not None
    [link] = await rows_of(session, ExternalIdentity)
    assert (link.user_id, link.subject, link.email) == (ann.id, "sub-1", "ann@example.com")
    linked = await session.scalar(select(AuditEvent).where(AuditEvent.action == "sso.linked"))
    assert linked.detail["created"] is False


async def test_deleting_an_account_deletes_its_links(
    session: AsyncSession, account_settings: AccountSettings
) -> None:
    user = await account_for_identity(session, account_settings, SSO, identity())
    await session.delete(await session.get(User, user.id))
    await session.commit()
    assert await count(session, ExternalIdentity) == 0


# --- Settings -------------------------------------------------------------------------------------


def test_sso_only_domains_refuse_passwords_with_the_providers_name() -> None:
    settings = SsoSettings(**{**SSO.__dict__, "sso_only_domains": frozenset({"corp.example"})})
    assert settings.requires_sso(" Cyd@CORP.example ")
    assert not settings.requires_sso("cyd@sub.corp.example")
    message = password_refusal(settings, "cyd@corp.example")
    assert message and "Example ID" in message
    assert password_refusal(settings, "ann@example.com") is None
    assert password_refusal(None, "cyd@corp.example") is None


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"OIDC_ISSUER": "https://id.example.com"}, "OIDC_CLIENT_ID and OIDC_CLIENT_SECRET"),
        ({"OIDC_ISSUER": "id.example.com", "OIDC_CLIENT_ID": "a"}, "https:// URL"),
        ({"OIDC_SSO_ONLY_DOMAINS": "corp.example"}, "needs OIDC_ISSUER"),
        (
            {
                "OIDC_ISSUER": "https://id.example.com",
                "OIDC_CLIENT_ID": "a",
                "OIDC_CLIENT_SECRET": "b",
                "OIDC_SCOPES": "email",
            },
            "must include openid",
        ),
    ],
)
def test_a_single_sign_on_setting_that_cannot_work_stops_the_start(
    settings: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        create_app("testing", **settings)


def test_production_wants_an_https_issuer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_KEY", "x" * 48)
    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@db.internal/issues")
    for name, value in {
        "OIDC_ISSUER": "http://id.example.com/",
        "OIDC_CLIENT_ID": "a",
        "OIDC_CLIENT_SECRET": "b",
    }.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match="https:// URL in production"):
        create_app("production")
    monkeypatch.setenv("OIDC_ISSUER", "https://id.example.com/")
    app = create_app("production")
    settings = SsoSettings.from_config(app.config)
    assert settings is not None and settings.issuer == "https://id.example.com"
    assert settings.redirect_uri == app.config["BASE_URL"] + "/auth/oidc/callback"
    assert SsoSettings.from_config({**app.config, "OIDC_ISSUER": ""}) is None


@pytest.mark.parametrize(
    ("claimed", "verified"),
    [(True, True), ("true", True), (False, False), ("false", False), (None, False), (1, False)],
)
async def test_only_a_true_email_verified_claim_vouches_for_the_address(
    scripted: ScriptedProvider, claimed: Any, verified: bool
) -> None:
    provider = OpenIDProvider(scripted.settings())
    try:
        identity = await finish_with(provider, scripted, email_verified=claimed)
        assert identity.email_verified is verified
    finally:
        await provider.close()


async def test_two_first_sign_ins_at_once_make_one_account_and_never_an_error(
    app: Quart, session: AsyncSession, account_settings: AccountSettings
) -> None:
    sessionmaker = app.extensions["database"].sessionmaker

    async def sign_in_once() -> User | SsoRefused:
        async with sessionmaker() as own_session:
            try:
                return await account_for_identity(own_session, account_settings, SSO, identity())
            except SsoRefused as refusal:
                return refusal

    outcomes = await asyncio.gather(*(sign_in_once() for _ in range(4)))
    users = [outcome for outcome in outcomes if isinstance(outcome, User)]
    refusals = [outcome for outcome in outcomes if isinstance(outcome, SsoRefused)]
    assert users and len(users) + len(refusals) == 4
    assert {user.id for user in users} == {users[0].id}
    assert all(refusal.reason == "concurrent_first_login" for refusal in refusals)
    assert await count(session, User) == 1
    assert await count(session, ExternalIdentity) == 1
