"""Single sign-on with OpenID Connect (decision 0025): the provider's discovery document and
keys, the authorization request (state, nonce, PKCE S256), the code exchange, the ID token's
checks. Which account an identity signs in to is services/sso_accounts.

Nothing here reads Quart's globals: the blueprint keeps the pending login in the signed
session and hands it back at the callback."""

from __future__ import annotations

import asyncio
import time
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import httpx
from authlib.common.security import generate_token
from authlib.integrations.base_client import OAuthError

with warnings.catch_warnings():
    # Authlib 1.9 warns at import that it falls back to httpx while httpx2 is absent; httpx is
    # what we declare (decision 0025), and a warning at every start would only alarm admins.
    warnings.filterwarnings("ignore", message="The httpx module is deprecated")
    from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import (
    ExpiredTokenError,
    InvalidClaimError,
    InvalidKeyIdError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from app.errors import Invalid
from app.security import same_secret

CALLBACK_PATH = "/auth/oidc/callback"
# How long a person may spend at the provider between the button and the callback.
PENDING_LOGIN_SECONDS = 600
# Clock difference tolerated between the provider and us when checking exp and iat.
CLOCK_LEEWAY_SECONDS = 60
# Only asymmetric signatures: an HS256 token would be signed with our own client secret.
SIGNING_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384")


@dataclass(frozen=True)
class SsoSettings:
    """What single sign-on needs from the configuration; None from `from_config` when off."""

    issuer: str
    client_id: str
    client_secret: str
    provider_name: str
    redirect_uri: str
    scopes: str = "openid email profile"
    sso_only_domains: frozenset[str] = frozenset()
    timeout: float = 10.0
    metadata_seconds: int = 3600

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SsoSettings | None:
        if not config["OIDC_ISSUER"]:
            return None
        domains = config["OIDC_SSO_ONLY_DOMAINS"].split(",")
        return cls(
            issuer=config["OIDC_ISSUER"],
            client_id=config["OIDC_CLIENT_ID"],
            client_secret=config["OIDC_CLIENT_SECRET"],
            provider_name=config["OIDC_PROVIDER_NAME"].strip(),
            redirect_uri=config["BASE_URL"] + CALLBACK_PATH,
            scopes=" ".join(config["OIDC_SCOPES"].split()),
            sso_only_domains=frozenset(d.strip().lower() for d in domains if d.strip()),
            timeout=config["OIDC_TIMEOUT"],
            metadata_seconds=config["OIDC_METADATA_SECONDS"],
        )

    def requires_sso(self, email: str) -> bool:
        """Whether this address's owner must sign in through the provider."""
        return email.strip().lower().rsplit("@", 1)[-1] in self.sso_only_domains


def password_refusal(settings: SsoSettings | None, email: str) -> str | None:
    """The message refusing a password login or reset for an SSO-only address, else None."""
    if settings is None or not settings.requires_sso(email):
        return None
    return (
        f"Addresses at {email.strip().lower().rsplit('@', 1)[-1]} sign in with "
        f"{settings.provider_name}: use the “Sign in with {settings.provider_name}” button."
    )


class SsoRefused(Invalid):
    """A single sign-on that cannot finish. `message` is for the person; `reason` is a short
    code for the audit log."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message, reason=reason)
        self.reason = reason


@dataclass(frozen=True)
class PendingLogin:
    """What the callback must match, kept in the signed session cookie: single use."""

    state: str
    nonce: str
    code_verifier: str
    started_at: int
    next_page: str = "/"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: object) -> PendingLogin | None:
        if not isinstance(raw, dict):
            return None
        try:
            return cls(
                state=str(raw["state"]),
                nonce=str(raw["nonce"]),
                code_verifier=str(raw["code_verifier"]),
                started_at=int(raw["started_at"]),
                next_page=str(raw.get("next_page", "/")),
            )
        except (KeyError, TypeError, ValueError):
            return None


@dataclass(frozen=True)
class ProviderIdentity:
    """Who the provider says signed in."""

    issuer: str
    subject: str
    email: str
    email_verified: bool
    name: str


def _vouched(email_verified: object) -> bool:
    # A boolean by the standard; some providers (Cognito) send the string. Never 1 or "yes".
    return email_verified is True or email_verified == "true"


def _unreachable(settings: SsoSettings) -> SsoRefused:
    return SsoRefused(
        f"{settings.provider_name} could not be reached just now. Try again in a moment.",
        reason="provider_unreachable",
    )


class OpenIDProvider:
    """One provider: its discovery document and keys (cached for `metadata_seconds`), and an
    Authlib client shared by the worker's requests. Every call is async: a slow provider holds
    only the request that waits for it."""

    def __init__(self, settings: SsoSettings) -> None:
        self.settings = settings
        self._client: AsyncOAuth2Client | None = None
        self._metadata: dict[str, Any] | None = None
        self._keys: KeySet | None = None
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    @property
    def client(self) -> AsyncOAuth2Client:
        # Made on first use, inside the worker's loop. The token it gets back is read from the
        # call's answer, never from the shared client (requests run concurrently).
        if self._client is None:
            self._client = AsyncOAuth2Client(
                client_id=self.settings.client_id,
                client_secret=self.settings.client_secret,
                scope=self.settings.scopes,
                redirect_uri=self.settings.redirect_uri,
                code_challenge_method="S256",
                token_endpoint_auth_method="client_secret_basic",  # noqa: S106 (a method name)
                timeout=self.settings.timeout,
            )
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            response = await self.client.request("GET", url, withhold_token=True)
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, ValueError) as error:
            raise _unreachable(self.settings) from error
        if not isinstance(document, dict):
            raise _unreachable(self.settings)
        return document

    async def metadata(self) -> dict[str, Any]:
        """The provider's discovery document, fetched again once it is older than the TTL."""
        async with self._lock:
            fresh = time.monotonic() - self._fetched_at < self.settings.metadata_seconds
            if self._metadata is None or not fresh:
                url = f"{self.settings.issuer}/.well-known/openid-configuration"
                document = await self._get_json(url)
                # OpenID Connect Discovery 4.3: the document must name the issuer we asked.
                if document.get("issuer") != self.settings.issuer:
                    raise SsoRefused(
                        f"{self.settings.provider_name} is misconfigured: its discovery "
                        "document names another issuer.",
                        reason="issuer_mismatch",
                    )
                self._metadata, self._keys = document, None
                self._fetched_at = time.monotonic()
            return self._metadata

    async def key_set(self, *, refresh: bool = False) -> KeySet:
        """The provider's signing keys (JWKS), cached with the discovery document; `refresh`
        fetches them again (a token signed with a key we have not seen: a rotation)."""
        metadata = await self.metadata()
        if self._keys is None or refresh:
            document = await self._get_json(metadata["jwks_uri"])
            try:
                self._keys = KeySet.import_key_set(document)  # type: ignore[arg-type]
            except (JoseError, ValueError, KeyError, TypeError) as error:
                raise _unreachable(self.settings) from error
        return self._keys

    async def begin(self, next_page: str) -> tuple[str, PendingLogin]:
        """The provider's authorization URL to send the browser to, and the pending login to
        keep until the callback (its state, nonce and PKCE verifier)."""
        metadata = await self.metadata()
        pending = PendingLogin(
            state=generate_token(32),
            nonce=generate_token(32),
            code_verifier=generate_token(64),
            started_at=int(time.time()),
            next_page=next_page,
        )
        url, _ = self.client.create_authorization_url(
            metadata["authorization_endpoint"],
            state=pending.state,
            code_verifier=pending.code_verifier,
            nonce=pending.nonce,
        )
        return url, pending

    async def finish(
        self, pending: PendingLogin | None, callback: Mapping[str, str]
    ) -> ProviderIdentity:
        """Check the callback against the pending login, exchange its code (with the PKCE
        verifier) and check the ID token. Raises SsoRefused for every way this can fail."""
        name = self.settings.provider_name
        # The state first, for errors too: an answer to another browser's request says nothing.
        if pending is None or not same_secret(callback.get("state", ""), pending.state):
            raise SsoRefused(
                "This sign-in does not match the one this browser started (it may have been "
                "started again in another tab). Please start again.",
                reason="state_mismatch",
            )
        if error := callback.get("error"):
            message = (
                f"You cancelled signing in with {name}."
                if error == "access_denied"
                else f"{name} did not sign you in ({error[:60]})."
            )
            raise SsoRefused(message, reason=f"provider_error:{error[:60]}")
        if time.time() - pending.started_at > PENDING_LOGIN_SECONDS:
            raise SsoRefused("This sign-in took too long. Please start again.", reason="expired")
        metadata = await self.metadata()
        # RFC 9207: when the provider names itself in the callback, it must be ours.
        if "iss" in callback and callback["iss"] != self.settings.issuer:
            raise SsoRefused("The answer came from another provider.", reason="issuer_mismatch")
        code = callback.get("code", "")
        if not code:
            raise SsoRefused(f"{name} sent no authorization code.", reason="no_code")
        token = await self._exchange(metadata, code, pending.code_verifier)
        claims = await self._checked_id_token(metadata, token, pending.nonce)
        if not claims.get("email"):
            claims = {**await self._userinfo(metadata, token, claims["sub"]), **claims}
        return ProviderIdentity(
            issuer=self.settings.issuer,
            subject=str(claims["sub"]),
            email=str(claims.get("email") or ""),
            email_verified=_vouched(claims.get("email_verified")),
            name=str(claims.get("name") or claims.get("preferred_username") or "").strip(),
        )

    async def _exchange(self, metadata: dict[str, Any], code: str, verifier: str) -> dict:
        try:
            token = await self.client.fetch_token(
                metadata["token_endpoint"],
                grant_type="authorization_code",
                code=code,
                code_verifier=verifier,
                redirect_uri=self.settings.redirect_uri,
            )
        except OAuthError as error:
            raise SsoRefused(
                f"{self.settings.provider_name} refused the sign-in code. Please start again.",
                reason=f"code_rejected:{str(error.error)[:60]}",
            ) from error
        except (httpx.HTTPError, ValueError) as error:
            raise _unreachable(self.settings) from error
        if not isinstance(token.get("id_token"), str):
            raise SsoRefused(
                f"{self.settings.provider_name} sent no ID token.", reason="no_id_token"
            )
        return dict(token)

    async def _checked_id_token(
        self, metadata: dict[str, Any], token: dict, nonce: str
    ) -> dict[str, Any]:
        algorithms = [
            alg
            for alg in metadata.get("id_token_signing_alg_values_supported", ["RS256"])
            if alg in SIGNING_ALGORITHMS
        ]
        check = {
            "issuer": self.settings.issuer,
            "client_id": self.settings.client_id,
            "nonce": nonce,
            "algorithms": algorithms,
            "access_token": token.get("access_token"),
        }
        try:
            return validate_id_token(token["id_token"], await self.key_set(), **check)
        except SsoRefused as refusal:
            if refusal.reason != "unknown_key":
                raise
        # A key we have not seen: the provider may have rotated its keys since we read them.
        return validate_id_token(token["id_token"], await self.key_set(refresh=True), **check)

    async def _userinfo(
        self, metadata: dict[str, Any], token: dict, subject: str
    ) -> dict[str, Any]:
        endpoint = metadata.get("userinfo_endpoint")
        if not endpoint:
            return {}
        try:
            response = await self.client.request(
                "GET",
                endpoint,
                withhold_token=True,
                headers={"Authorization": f"Bearer {token['access_token']}"},
            )
            response.raise_for_status()
            info = response.json()
        except (httpx.HTTPError, ValueError, KeyError) as error:
            raise _unreachable(self.settings) from error
        # OpenID Connect Core 5.3.2: userinfo for another subject must not be used.
        if not isinstance(info, dict) or info.get("sub") != subject:
            raise SsoRefused("The provider's profile is for someone else.", reason="bad_userinfo")
        return {key: info[key] for key in ("email", "email_verified", "name") if key in info}


def validate_id_token(
    id_token: str,
    keys: KeySet,
    *,
    issuer: str,
    client_id: str,
    nonce: str,
    algorithms: list[str] | None = None,
    access_token: str | None = None,
    now: int | None = None,
) -> dict[str, Any]:
    """The claims of an ID token whose signature (against `keys`), issuer, audience, expiry,
    issue time, nonce and authorized party all check out. Raises SsoRefused, with the reason
    "unknown_key" for a key that `keys` lacks (the caller may fetch them again)."""
    refused = SsoRefused(
        "The provider's answer could not be verified. Please start again.", reason="bad_token"
    )
    try:
        decoded = jwt.decode(
            id_token,
            keys,
            registry=JWSRegistry(algorithms=algorithms or ["RS256"], strict_check_header=False),
        )
    except InvalidKeyIdError as error:
        raise SsoRefused(refused.message, reason="unknown_key") from error
    except (JoseError, ValueError, TypeError) as error:
        raise SsoRefused(refused.message, reason="bad_signature") from error
    claims = CodeIDToken(
        decoded.claims,
        decoded.header,
        {
            "iss": {"essential": True, "value": issuer},
            "aud": {"essential": True, "value": client_id},
        },
        {"nonce": nonce, "client_id": client_id, "access_token": access_token},
    )
    try:
        claims.validate(now=now, leeway=CLOCK_LEEWAY_SECONDS)
        if now is None and int(claims["iat"]) > time.time() + CLOCK_LEEWAY_SECONDS:
            raise InvalidClaimError("iat")  # issued in the future: a wrong clock or a forgery
    except ExpiredTokenError as error:
        raise SsoRefused(refused.message, reason="expired_token") from error
    except (InvalidClaimError, MissingClaimError) as error:
        claim = getattr(error, "claim", "") or ""
        reason = "nonce_mismatch" if claim == "nonce" else f"bad_claim:{claim}"
        raise SsoRefused(refused.message, reason=reason) from error
    except (JoseError, ValueError, TypeError) as error:
        raise SsoRefused(refused.message, reason="bad_token") from error
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise SsoRefused(refused.message, reason="bad_claim:sub")
    return dict(claims)
