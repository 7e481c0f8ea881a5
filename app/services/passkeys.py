"""Passkeys (decision 0024): registering, naming and removing WebAuthn credentials, and signing
in with one, instead of a password or as the second factor after it.

Every ceremony starts with options that carry a challenge, kept server-side in
webauthn_challenge for a few minutes, and ends when the browser's answer comes back: the
challenge row is deleted first, in a commit of its own, so that no answer is accepted twice,
by any worker, whether it is then accepted or refused."""

from __future__ import annotations

import asyncio
import json
import secrets
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, parse_authentication_credential_json
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticationCredential,
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    CredentialDeviceType,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from app.db import utcnow
from app.errors import Invalid, NotFound
from app.models import Passkey, User, WebAuthnChallenge
from app.services import audit
from app.services.text import storable
from app.services.transaction import use_case

NAME_MAX = 100
PASSKEYS_MAX = 20
# How long a browser has to answer a ceremony: the hint it gets, and how long we wait.
CEREMONY_TIMEOUT = timedelta(minutes=2)
CHALLENGE_LIFETIME = timedelta(minutes=5)
REFUSED = "That passkey was not accepted. Try again, or use another way to sign in."


class Purpose(StrEnum):
    REGISTER = "register"
    SIGN_IN = "sign_in"
    SECOND_FACTOR = "second_factor"


@dataclass(frozen=True)
class RelyingParty:
    """Who the passkeys are for: the WebAuthn relying party id (a domain) and the origin that
    browsers must report, from WEBAUTHN_RP_ID and WEBAUTHN_ORIGIN."""

    id: str
    origin: str
    name: str = "Issues"

    @property
    def available(self) -> bool:
        """Passkeys need a domain name: with BASE_URL at an IP address they are off."""
        return bool(self.id)

    @classmethod
    def from_config(cls, config: Any) -> RelyingParty:
        return cls(config["WEBAUTHN_RP_ID"], config["WEBAUTHN_ORIGIN"])


@dataclass(frozen=True)
class Ceremony:
    """Options for the browser (JSON, as @simplewebauthn/browser takes them), and the challenge
    in them, which the caller keeps to name the ceremony when the answer comes."""

    options_json: str
    challenge: bytes


def signed_challenge(answer: Any) -> bytes | None:
    """The challenge a browser's answer says it signed (from its clientDataJSON), to find the
    ceremony it answers; None when there is none. Verification checks it again."""
    try:
        response = answer["response"]
        client_data = json.loads(base64url_to_bytes(response["clientDataJSON"]))
        return base64url_to_bytes(client_data["challenge"])
    except (KeyError, TypeError, ValueError):
        return None


def passkey_name(name: str) -> str:
    """The name, trimmed; raises Invalid (field "name") when it is empty or too long."""
    name = storable(name).strip()
    if not 1 <= len(name) <= NAME_MAX:
        raise Invalid(f"A passkey needs a name of at most {NAME_MAX} characters.", field="name")
    return name


def _require_available(relying_party: RelyingParty) -> None:
    if not relying_party.available:
        raise Invalid(
            "Passkeys are off on this server: it is reached at an IP address, and passkeys "
            "need a domain name (see WEBAUTHN_RP_ID)."
        )


def _transports(passkey: Passkey) -> list[AuthenticatorTransport] | None:
    known = {transport.value for transport in AuthenticatorTransport}
    listed = [AuthenticatorTransport(t) for t in passkey.transports.split(",") if t in known]
    return listed or None


def _descriptor(passkey: Passkey) -> PublicKeyCredentialDescriptor:
    return PublicKeyCredentialDescriptor(id=passkey.credential_id, transports=_transports(passkey))


async def _new_challenge(
    session: AsyncSession,
    purpose: Purpose,
    user_id: int | None,
    user_handle: bytes | None = None,
) -> bytes:
    """Store a fresh challenge; expired ones of anyone go at the same time (the table stays
    as small as the ceremonies under way)."""
    now = utcnow()
    await session.execute(delete(WebAuthnChallenge).where(WebAuthnChallenge.expires_at <= now))
    challenge = secrets.token_bytes(32)
    session.add(
        WebAuthnChallenge(
            challenge=challenge,
            purpose=purpose.value,
            user_id=user_id,
            user_handle=user_handle,
            expires_at=now + CHALLENGE_LIFETIME,
        )
    )
    return challenge


@use_case
async def _take_challenge(
    session: AsyncSession, challenge: bytes, purpose: Purpose, user_id: int | None
) -> WebAuthnChallenge | None:
    """Delete the challenge and return it, or None when it is unknown, used, expired, or not
    this ceremony's. Its own commit: a refused answer still uses its challenge up. Two workers
    given one answer at once both try the delete; only one deletes the row."""
    owner = (
        WebAuthnChallenge.user_id.is_(None)
        if user_id is None
        else WebAuthnChallenge.user_id == user_id
    )
    taken = await session.execute(
        delete(WebAuthnChallenge)
        .where(
            WebAuthnChallenge.challenge == challenge,
            WebAuthnChallenge.purpose == purpose.value,
            WebAuthnChallenge.expires_at > utcnow(),
            owner,
        )
        .returning(WebAuthnChallenge.user_handle)
    )
    row = taken.one_or_none()
    if row is None:
        return None
    return WebAuthnChallenge(challenge=challenge, purpose=purpose.value, user_handle=row[0])


# --- Registering, listing, naming, removing -----------------------------------------------------


async def list_passkeys(session: AsyncSession, user_id: int) -> list[Passkey]:
    """The user's passkeys, oldest first (the account page's list)."""
    found = await session.scalars(
        select(Passkey).where(Passkey.user_id == user_id).order_by(Passkey.id)
    )
    return list(found)


async def has_passkeys(session: AsyncSession, user_id: int) -> bool:
    """Whether the user has a passkey, which then counts as a second factor."""
    count = await session.scalar(
        select(func.count()).select_from(Passkey).where(Passkey.user_id == user_id)
    )
    return bool(count)


async def remove_all(session: AsyncSession, user_id: int) -> None:
    """Remove every passkey of the user, in the caller's transaction (a reset of their second
    factors, which writes its own audit row)."""
    await session.execute(delete(Passkey).where(Passkey.user_id == user_id))


@use_case
async def registration_options(
    session: AsyncSession, relying_party: RelyingParty, user: User, *, name: str
) -> Ceremony:
    """Options to make a new passkey for `user`, named `name` (checked now, so that a bad name
    is refused before the browser asks for a fingerprint). The user's passkeys are excluded:
    an authenticator that holds one says so instead of making a second."""
    _require_available(relying_party)
    passkey_name(name)
    existing = await list_passkeys(session, user.id)
    if len(existing) >= PASSKEYS_MAX:
        raise Invalid(f"Remove a passkey first: at most {PASSKEYS_MAX}.", field="name")
    # One WebAuthn user id for all of a user's passkeys; random, so it tells nothing about them.
    user_handle = existing[0].user_handle if existing else secrets.token_bytes(32)
    challenge = await _new_challenge(session, Purpose.REGISTER, user.id, user_handle)
    options = generate_registration_options(
        rp_id=relying_party.id,
        rp_name=relying_party.name,
        user_id=user_handle,
        user_name=user.email,
        user_display_name=user.display_name,
        challenge=challenge,
        timeout=int(CEREMONY_TIMEOUT.total_seconds() * 1000),
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED,
            user_verification=UserVerificationRequirement.PREFERRED,
        ),
        exclude_credentials=[_descriptor(passkey) for passkey in existing],
    )
    return Ceremony(options_to_json(options), challenge)


async def add_passkey(
    session: AsyncSession,
    relying_party: RelyingParty,
    user: User,
    *,
    name: str,
    challenge: bytes,
    answer: Any,
    origin: audit.Origin = audit.NO_ORIGIN,
) -> Passkey:
    """Check the browser's answer to `registration_options` (its challenge, origin and relying
    party) and keep the new passkey. Raises Invalid for a bad name, an answer that does not
    verify, a used or expired challenge, or a credential registered already."""
    name = passkey_name(name)
    taken = await _take_challenge(session, challenge, Purpose.REGISTER, user.id)
    if taken is None or taken.user_handle is None:
        raise Invalid("This request has expired. Try adding the passkey again.")
    try:
        # CPU work (signatures, certificate chains): off the event loop.
        verified = await asyncio.to_thread(
            verify_registration_response,
            credential=answer,
            expected_challenge=challenge,
            expected_rp_id=relying_party.id,
            expected_origin=relying_party.origin,
        )
    except (WebAuthnException, ValueError, TypeError, KeyError) as error:
        raise Invalid(f"The passkey was not accepted: {error}") from None
    return await _keep_passkey(
        session,
        user,
        name=name,
        user_handle=taken.user_handle,
        verified=verified,
        transports=_answer_transports(answer),
        origin=origin,
    )


def _answer_transports(answer: Any) -> str:
    if isinstance(answer, str):
        try:
            answer = json.loads(answer)
        except ValueError:
            return ""
    response = answer.get("response") if isinstance(answer, dict) else None
    listed = response.get("transports") if isinstance(response, dict) else None
    if not isinstance(listed, list):
        return ""
    known = {transport.value for transport in AuthenticatorTransport}
    return ",".join(t for t in listed if isinstance(t, str) and t in known)[:200]


@use_case
async def _keep_passkey(
    session: AsyncSession,
    user: User,
    *,
    name: str,
    user_handle: bytes,
    verified: Any,
    transports: str,
    origin: audit.Origin,
) -> Passkey:
    if await session.scalar(
        select(Passkey.id).where(Passkey.credential_id == verified.credential_id)
    ):
        raise Invalid("This passkey is registered already.")
    passkey = Passkey(
        user_id=user.id,
        credential_id=verified.credential_id,
        public_key=verified.credential_public_key,
        user_handle=user_handle,
        sign_count=verified.sign_count,
        transports=transports,
        aaguid=str(verified.aaguid),
        backup_eligible=verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE,
        backed_up=verified.credential_backed_up,
        name=name,
        created_at=utcnow(),
    )
    session.add(passkey)
    try:
        await session.flush()
    except IntegrityError:  # registered by a parallel request since the check
        raise Invalid("This passkey is registered already.") from None
    audit.record(session, audit.AuditAction.PASSKEY_ADDED, actor=user, origin=origin, name=name)
    return passkey


async def _own_passkey(session: AsyncSession, owner: User, passkey_id: int) -> Passkey:
    passkey = await session.get(Passkey, passkey_id)
    if passkey is None or passkey.user_id != owner.id:
        raise NotFound("No such passkey.")
    return passkey


@use_case
async def rename_passkey(session: AsyncSession, owner: User, passkey_id: int, name: str) -> Passkey:
    """Rename one of the owner's passkeys; someone else's is NotFound."""
    passkey = await _own_passkey(session, owner, passkey_id)
    passkey.name = passkey_name(name)
    return passkey


@use_case
async def remove_passkey(
    session: AsyncSession, owner: User, passkey_id: int, *, origin: audit.Origin = audit.NO_ORIGIN
) -> None:
    """Remove one of the owner's passkeys: it signs nobody in from now on."""
    passkey = await _own_passkey(session, owner, passkey_id)
    await session.delete(passkey)
    audit.record(
        session, audit.AuditAction.PASSKEY_REMOVED, actor=owner, origin=origin, name=passkey.name
    )


# --- Signing in ---------------------------------------------------------------------------------


@use_case
async def sign_in_options(session: AsyncSession, relying_party: RelyingParty) -> Ceremony:
    """Options for a passwordless sign-in: no credentials listed, so that the browser offers
    the passkeys it holds for this site (discoverable credentials), with user verification
    required, because the passkey is then both factors at once."""
    _require_available(relying_party)
    challenge = await _new_challenge(session, Purpose.SIGN_IN, None)
    options = generate_authentication_options(
        rp_id=relying_party.id,
        challenge=challenge,
        timeout=int(CEREMONY_TIMEOUT.total_seconds() * 1000),
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    return Ceremony(options_to_json(options), challenge)


@use_case
async def second_factor_options(
    session: AsyncSession, relying_party: RelyingParty, user_id: int
) -> Ceremony:
    """Options for the second step of a password login: the held user's passkeys only."""
    _require_available(relying_party)
    passkeys = await list_passkeys(session, user_id)
    if not passkeys:
        raise Invalid("This account has no passkey.")
    challenge = await _new_challenge(session, Purpose.SECOND_FACTOR, user_id)
    options = generate_authentication_options(
        rp_id=relying_party.id,
        challenge=challenge,
        timeout=int(CEREMONY_TIMEOUT.total_seconds() * 1000),
        allow_credentials=[_descriptor(passkey) for passkey in passkeys],
        user_verification=UserVerificationRequirement.PREFERRED,
    )
    return Ceremony(options_to_json(options), challenge)


def may_sign_in(user: User) -> bool:
    """Whether this account may start a session at all: not while an admin has deactivated it
    (start_session refuses it too; asking here gives the passkey's JSON answer its reason)."""
    return user.deactivated_at is None


async def sign_in(
    session: AsyncSession,
    relying_party: RelyingParty,
    *,
    challenge: bytes,
    answer: Any,
    origin: audit.Origin = audit.NO_ORIGIN,
) -> User:
    """The user whose passkey answered the passwordless challenge. Raises Invalid (and records
    the refusal) for an answer that does not verify: another origin or relying party, a used
    challenge, an unknown or removed passkey, a sign count gone backwards, no user verified."""
    return await _check_assertion(
        session, relying_party, Purpose.SIGN_IN, None, challenge, answer, origin
    )


async def verify_second_factor(
    session: AsyncSession,
    relying_party: RelyingParty,
    user_id: int,
    *,
    challenge: bytes,
    answer: Any,
    origin: audit.Origin = audit.NO_ORIGIN,
) -> User:
    """The held user, once one of THEIR passkeys answered the challenge; like `sign_in`
    otherwise (user verification is not needed here: the password was the first factor)."""
    return await _check_assertion(
        session, relying_party, Purpose.SECOND_FACTOR, user_id, challenge, answer, origin
    )


async def _check_assertion(
    session: AsyncSession,
    relying_party: RelyingParty,
    purpose: Purpose,
    user_id: int | None,
    challenge: bytes,
    answer: Any,
    origin: audit.Origin,
) -> User:
    _require_available(relying_party)
    taken = await _take_challenge(session, challenge, purpose, user_id)
    passkey, user = None, None
    try:
        if taken is None:
            raise _Refusal("challenge unknown, used or expired")
        try:
            credential = parse_authentication_credential_json(answer)
        except (WebAuthnException, ValueError, TypeError) as error:
            raise _Refusal(f"malformed answer: {error}") from None
        passkey, user = await _passkey_and_user(session, credential)
        if passkey is None or user is None:
            raise _Refusal("unknown passkey")
        if user_id is not None and user.id != user_id:
            raise _Refusal("another account's passkey")
        if credential.response.user_handle not in (None, passkey.user_handle):
            raise _Refusal("user handle does not match")
        if not may_sign_in(user):
            raise _Refusal("account may not sign in")
        try:
            verified = await asyncio.to_thread(
                verify_authentication_response,
                credential=credential,
                expected_challenge=challenge,
                expected_rp_id=relying_party.id,
                expected_origin=relying_party.origin,
                credential_public_key=passkey.public_key,
                credential_current_sign_count=passkey.sign_count,
                require_user_verification=purpose is Purpose.SIGN_IN,
            )
        except WebAuthnException as error:
            raise _Refusal(str(error)) from None
        if not await _note_use(session, passkey, verified.new_sign_count, verified, origin, user):
            raise _Refusal("passkey used in parallel")
    except _Refusal as refusal:
        await audit.record_refusal(
            session,
            audit.AuditAction.PASSKEY_FAILED,
            actor=None,
            subject=user,
            origin=origin,
            purpose=purpose.value,
            reason=refusal.reason[:200],
            **({"name": passkey.name} if passkey is not None else {}),
        )
        raise Invalid(REFUSED) from None
    return user


class _Refusal(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def _passkey_and_user(
    session: AsyncSession, credential: AuthenticationCredential
) -> tuple[Passkey | None, User | None]:
    row = (
        await session.execute(
            select(Passkey, User)
            .join(User, User.id == Passkey.user_id)
            .where(Passkey.credential_id == credential.raw_id)
        )
    ).one_or_none()
    if row is None:
        return None, None
    passkey, user = row
    # Detached: the refusal's rollback (or the next use case's) must not expire them.
    session.expunge(passkey)
    session.expunge(user)
    return passkey, user


@use_case
async def _note_use(
    session: AsyncSession,
    passkey: Passkey,
    new_sign_count: int,
    verified: Any,
    origin: audit.Origin,
    user: User,
) -> bool:
    """Store the new sign count, if nobody stored one since it was read (a cloned
    authenticator racing its twin), and the audit row of the passkey's use."""
    changed = await session.execute(
        update(Passkey)
        .where(Passkey.id == passkey.id, Passkey.sign_count == passkey.sign_count)
        .values(
            sign_count=new_sign_count,
            last_used_at=utcnow(),
            backed_up=verified.credential_backed_up,
        )
    )
    if changed.rowcount != 1:
        return False
    audit.record(
        session, audit.AuditAction.PASSKEY_LOGIN, actor=user, origin=origin, name=passkey.name
    )
    return True
