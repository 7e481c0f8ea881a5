"""Two-factor sign-in with TOTP (decision 0023): enrolment, the code at login (each accepted
once, attempts throttled per account in the database that every worker shares), single-use
recovery codes, disabling, and the reset that the admin console calls."""

from __future__ import annotations

import base64
import math
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pyotp
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pyotp import utils as otp_utils
from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.errors import Conflict, Invalid, NotFound, TooManyRequests
from app.models import RateLimitBucket, RecoveryCode, TotpCredential, User
from app.security import token_digest
from app.services import audit, passkeys, rate_limits
from app.services.accounts import AccountSettings
from app.services.transaction import use_case

ISSUER = "Issues"
RECOVERY_CODE_COUNT = 10
# Letters and digits that cannot be misread for one another (no 0/o, 1/l/i); 16 of them are
# about 79 bits, too many to guess even from a stolen table of their SHA-256 digests.
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
RECOVERY_CODE_LENGTH = 16
# The steps just before and after the current one count too: phones' clocks drift.
VALID_WINDOW = 1
WRONG_CODE = "That code is not right. Check that your phone's clock is set and try again."
REPLAYED_CODE = "That code was used already. Wait for the next one and enter it."
WRONG_RECOVERY_CODE = "That recovery code is not right, or it was used already."


@dataclass(frozen=True)
class TwoFactorSettings:
    """The key that seals TOTP secrets at rest, and the attempt limit per account."""

    box: Fernet
    issuer: str = ISSUER
    attempts: int = 5
    attempt_window_seconds: int = 300

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> TwoFactorSettings:
        return cls(box=Fernet(secret_box_key(config["SECRET_KEY"])))

    def seal(self, secret: str) -> str:
        return self.box.encrypt(secret.encode()).decode()

    def unseal(self, sealed: str) -> str:
        """The secret, or Invalid when it was sealed under another SECRET_KEY."""
        try:
            return self.box.decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise Invalid(
                "Your authenticator app's key can no longer be read here (the server's key "
                "changed): use a recovery code, or ask an admin to reset your two-factor.",
                field="code",
            ) from None


def secret_box_key(secret_key: str) -> bytes:
    """A Fernet key of its own, derived from SECRET_KEY (HKDF), so that no other use of
    SECRET_KEY (signed cookies, links) ever holds the key of the secrets."""
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"issues.totp-secret"
    ).derive(secret_key.encode())
    return base64.urlsafe_b64encode(derived)


@dataclass(frozen=True)
class Enrolment:
    """A secret waiting for its first code: for the QR code and for typing in by hand."""

    secret: str
    provisioning_uri: str


@dataclass(frozen=True)
class TwoFactorStatus:
    enabled: bool
    recovery_codes_left: int


# --- Reading ----------------------------------------------------------------------------------


async def _confirmed(session: AsyncSession, user_id: int) -> TotpCredential | None:
    return await session.scalar(
        select(TotpCredential).where(
            TotpCredential.user_id == user_id, TotpCredential.confirmed_at.is_not(None)
        )
    )


async def second_factors(session: AsyncSession, user: User) -> list[str]:
    """The second factors the account has: "totp" (a confirmed authenticator app; a pending
    enrolment is not one) and "passkey" (any passkey: one given after the password proves the
    device). A password login asks for one of them whenever the list is not empty."""
    factors = ["totp"] if await _confirmed(session, user.id) is not None else []
    if await passkeys.has_passkeys(session, user.id):
        factors.append("passkey")
    return factors


async def status(session: AsyncSession, user_id: int) -> TwoFactorStatus:
    """What the account page shows: on or off, and how many recovery codes are left."""
    enabled = await _confirmed(session, user_id) is not None
    left = await session.scalar(
        select(func.count())
        .select_from(RecoveryCode)
        .where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
    )
    return TwoFactorStatus(enabled=enabled, recovery_codes_left=left or 0)


async def account_for_second_step(session: AsyncSession, user_id: int) -> User | None:
    """The account a held login belongs to, detached (valid after a refusal's rollback)."""
    user = await session.get(User, user_id)
    if user is not None:
        session.expunge(user)
    return user


def _totp(settings: TwoFactorSettings, secret: str, user: User) -> pyotp.TOTP:
    return pyotp.TOTP(secret, issuer=settings.issuer, name=user.email)


def _enrolment(settings: TwoFactorSettings, secret: str, user: User) -> Enrolment:
    uri = _totp(settings, secret, user).provisioning_uri()
    return Enrolment(secret=secret, provisioning_uri=uri)


async def pending_enrolment(
    session: AsyncSession, settings: TwoFactorSettings, user: User
) -> Enrolment | None:
    """The enrolment begun and not yet confirmed, if any (to show its QR code again)."""
    credential = await session.get(TotpCredential, user.id)
    if credential is None or credential.confirmed_at is not None:
        return None
    return _enrolment(settings, settings.unseal(credential.secret_encrypted), user)


# --- Checking codes ---------------------------------------------------------------------------


def _only_digits(code: str) -> str:
    return "".join(code.split())


def matching_step(totp: pyotp.TOTP, code: str, at: float | None = None) -> int | None:
    """The time step whose code `code` is, within the window, or None. Every step of the
    window is compared, with compare_digest (as pyotp's own verify does), so the time taken
    says nothing about which part of the code was right."""
    code = _only_digits(code)
    if len(code) != totp.digits or not code.isdigit():
        return None
    current = totp.timecode(time.time() if at is None else at)
    found = None
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        if otp_utils.strings_equal(code, totp.generate_otp(step)):
            found = step
    return found


async def _accept_step(session: AsyncSession, user_id: int, step: int) -> None:
    """Take the code of `step`: only if no code of this step or a later one was taken before.
    The condition is in the UPDATE, so of two workers given the same code one wins."""
    taken = await session.execute(
        update(TotpCredential)
        .where(
            TotpCredential.user_id == user_id,
            TotpCredential.confirmed_at.is_not(None),
            TotpCredential.last_step < step,
        )
        .values(last_step=step)
    )
    if taken.rowcount != 1:
        raise Invalid(REPLAYED_CODE, field="code")


async def _take_totp_code(
    session: AsyncSession, settings: TwoFactorSettings, user: User, code: str
) -> None:
    credential = await _confirmed(session, user.id)
    if credential is None:
        raise Invalid("Two-factor sign-in is not on for this account.", field="code")
    totp = _totp(settings, settings.unseal(credential.secret_encrypted), user)
    step = matching_step(totp, code)
    if step is None:
        raise Invalid(WRONG_CODE, field="code")
    await _accept_step(session, user.id, step)


def normalise_recovery_code(code: str) -> str:
    return "".join(character for character in code.lower() if character.isalnum())


async def _spend_recovery_code(session: AsyncSession, user: User, code: str) -> int:
    """Mark the code used, once: the condition is in the UPDATE, so two parallel uses of one
    code cannot both succeed. Returns how many codes are left."""
    spent = await session.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.user_id == user.id,
            RecoveryCode.code_digest == token_digest(normalise_recovery_code(code)),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=utcnow())
    )
    if spent.rowcount != 1:
        raise Invalid(WRONG_RECOVERY_CODE, field="code")
    left = await session.scalar(
        select(func.count())
        .select_from(RecoveryCode)
        .where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
    )
    return left or 0


def _looks_like_totp(code: str) -> bool:
    digits = _only_digits(code)
    return len(digits) == 6 and digits.isdigit()


# --- The attempt limit ------------------------------------------------------------------------


def _attempts_key(user_id: int) -> str:
    return f"two-factor:{user_id}"


async def _count_attempt(
    session: AsyncSession, settings: TwoFactorSettings, user: User, origin: audit.Origin
) -> None:
    """Count one code attempt for the account before it is checked (its own commit, in the
    database every worker shares), so parallel guesses each see the ones before them; raises
    TooManyRequests once the account has had its attempts in this window."""
    count = await rate_limits.count_hit(
        session,
        _attempts_key(user.id),
        limit=settings.attempts,
        window_seconds=settings.attempt_window_seconds,
    )
    if not count.exceeded:
        return
    if count.hits == settings.attempts + 1:  # one row per throttled window, not per request
        await audit.record_refusal(
            session, audit.AuditAction.TOTP_FAILED, actor=user, origin=origin, reason="throttled"
        )
    minutes = math.ceil(count.reset_seconds / 60)
    raise TooManyRequests(
        count.reset_seconds,
        f"Too many attempts, try again in {minutes} minute{'s' if minutes != 1 else ''}.",
    )


async def _clear_attempts(session: AsyncSession, user_id: int) -> None:
    await session.execute(
        delete(RateLimitBucket).where(RateLimitBucket.key == _attempts_key(user_id))
    )


async def _refused(
    session: AsyncSession, user: User, origin: audit.Origin, refusal: Invalid, reason: str
) -> Invalid:
    await audit.record_refusal(
        session, audit.AuditAction.TOTP_FAILED, actor=user, origin=origin, reason=reason
    )
    return refusal


def _reason(refusal: Invalid) -> str:
    return {REPLAYED_CODE: "replayed_code", WRONG_RECOVERY_CODE: "wrong_recovery_code"}.get(
        refusal.message, "wrong_code"
    )


# --- Enrolment --------------------------------------------------------------------------------


@use_case
async def begin_enrolment(
    session: AsyncSession, settings: TwoFactorSettings, user: User
) -> Enrolment:
    """A new secret for the account, waiting for its first code (two-factor stays off until
    then). Raises Conflict when two-factor is on already."""
    secret, now = pyotp.random_base32(), utcnow()
    insert = postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert
    # One statement, so that a double-clicked "Enable" cannot insert the row twice: a set-up
    # begun before and abandoned starts again with the new secret; a confirmed one is kept.
    statement = insert(TotpCredential).values(
        user_id=user.id, secret_encrypted=settings.seal(secret), created_at=now, last_step=0
    )
    statement = statement.on_conflict_do_update(
        index_elements=["user_id"],
        set_={"secret_encrypted": statement.excluded.secret_encrypted, "created_at": now},
        where=TotpCredential.confirmed_at.is_(None),
    ).returning(TotpCredential.user_id)
    if (await session.execute(statement)).first() is None:
        raise Conflict("Two-factor sign-in is on already.")
    return _enrolment(settings, secret, user)


def _new_recovery_codes(session: AsyncSession, user_id: int) -> list[str]:
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_CODE_LENGTH))
        session.add(RecoveryCode(user_id=user_id, code_digest=token_digest(raw)))
        codes.append("-".join(raw[start : start + 4] for start in range(0, len(raw), 4)))
    return codes


async def _replace_recovery_codes(session: AsyncSession, user_id: int) -> list[str]:
    await session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    return _new_recovery_codes(session, user_id)


async def confirm_enrolment(
    session: AsyncSession,
    settings: TwoFactorSettings,
    user: User,
    code: str,
    *,
    origin: audit.Origin = audit.NO_ORIGIN,
) -> list[str]:
    """Switch two-factor on with the first code from the app, and return the ten recovery
    codes (shown once; only their digests are kept). Raises Invalid for a wrong code or when
    no set-up was begun, TooManyRequests after too many attempts."""
    await _count_attempt(session, settings, user, origin)
    return await _confirm(session, settings, user, code, origin)


@use_case
async def _confirm(
    session: AsyncSession,
    settings: TwoFactorSettings,
    user: User,
    code: str,
    origin: audit.Origin,
) -> list[str]:
    credential = await session.get(TotpCredential, user.id, with_for_update=True)
    if credential is None:
        raise Invalid("Start the set-up again: it was not begun or was reset.", field="code")
    if credential.confirmed_at is not None:
        raise Conflict("Two-factor sign-in is on already.")
    totp = _totp(settings, settings.unseal(credential.secret_encrypted), user)
    step = matching_step(totp, code)
    if step is None:
        raise Invalid(WRONG_CODE, field="code")
    credential.confirmed_at, credential.last_step = utcnow(), step
    codes = await _replace_recovery_codes(session, user.id)
    await _clear_attempts(session, user.id)
    audit.record(session, audit.AuditAction.TOTP_ENABLED, actor=user, origin=origin)
    return codes


# --- The second step at login -----------------------------------------------------------------


async def verify_code(
    session: AsyncSession,
    settings: TwoFactorSettings,
    user: User,
    code: str,
    *,
    origin: audit.Origin = audit.NO_ORIGIN,
) -> None:
    """Accept a code from the app as the second factor: right, within the window, and of a
    later step than the last one accepted. Raises Invalid for a wrong or replayed code (and
    records the refusal), TooManyRequests after too many attempts."""
    await _count_attempt(session, settings, user, origin)
    try:
        await _accept_code(session, settings, user, code)
    except Invalid as refusal:
        raise await _refused(session, user, origin, refusal, _reason(refusal)) from None


@use_case
async def _accept_code(
    session: AsyncSession, settings: TwoFactorSettings, user: User, code: str
) -> None:
    await _take_totp_code(session, settings, user, code)
    await _clear_attempts(session, user.id)


async def use_recovery_code(
    session: AsyncSession,
    settings: TwoFactorSettings,
    user: User,
    code: str,
    *,
    origin: audit.Origin = audit.NO_ORIGIN,
) -> int:
    """Accept a recovery code as the second factor, once. Returns how many are left. Raises
    Invalid for a wrong or used code, TooManyRequests after too many attempts."""
    await _count_attempt(session, settings, user, origin)
    try:
        return await _accept_recovery_code(session, user, code, origin)
    except Invalid as refusal:
        raise await _refused(session, user, origin, refusal, "wrong_recovery_code") from None


@use_case
async def _accept_recovery_code(
    session: AsyncSession, user: User, code: str, origin: audit.Origin
) -> int:
    if await _confirmed(session, user.id) is None:
        raise Invalid(WRONG_RECOVERY_CODE, field="code")
    left = await _spend_recovery_code(session, user, code)
    await _clear_attempts(session, user.id)
    audit.record(
        session, audit.AuditAction.RECOVERY_CODE_USED, actor=user, origin=origin, left=left
    )
    return left


# --- Changes on the account page --------------------------------------------------------------


async def regenerate_recovery_codes(
    session: AsyncSession,
    settings: TwoFactorSettings,
    user: User,
    code: str,
    *,
    origin: audit.Origin = audit.NO_ORIGIN,
) -> list[str]:
    """Ten new recovery codes for a current code from the app; the old ones stop working."""
    await _count_attempt(session, settings, user, origin)
    try:
        return await _regenerate(session, settings, user, code, origin)
    except Invalid as refusal:
        raise await _refused(session, user, origin, refusal, _reason(refusal)) from None


@use_case
async def _regenerate(
    session: AsyncSession,
    settings: TwoFactorSettings,
    user: User,
    code: str,
    origin: audit.Origin,
) -> list[str]:
    await _take_totp_code(session, settings, user, code)
    codes = await _replace_recovery_codes(session, user.id)
    await _clear_attempts(session, user.id)
    audit.record(session, audit.AuditAction.RECOVERY_CODES_REGENERATED, actor=user, origin=origin)
    return codes


async def disable(
    session: AsyncSession,
    settings: TwoFactorSettings,
    account_settings: AccountSettings,
    user: User,
    *,
    password: str,
    code: str,
    origin: audit.Origin = audit.NO_ORIGIN,
) -> None:
    """Switch two-factor off: needs the password and a code from the app or a recovery code.
    Raises Invalid (field "password" or "code"), TooManyRequests after too many attempts."""
    await _count_attempt(session, settings, user, origin)
    password_hash = await session.scalar(select(User.password_hash).where(User.id == user.id))
    # Checked before the write transaction begins: argon2 takes a while, and on SQLite the
    # write lock would be held all along.
    if not await account_settings.hasher.verify(password_hash, password):
        raise Invalid("That is not your password.", field="password")
    try:
        await _disable(session, settings, user, code, origin)
    except Invalid as refusal:
        raise await _refused(session, user, origin, refusal, _reason(refusal)) from None


@use_case
async def _disable(
    session: AsyncSession,
    settings: TwoFactorSettings,
    user: User,
    code: str,
    origin: audit.Origin,
) -> None:
    if _looks_like_totp(code):
        await _take_totp_code(session, settings, user, code)
    else:
        await _spend_recovery_code(session, user, code)
    await reset(session, user.id)
    await _clear_attempts(session, user.id)
    audit.record(session, audit.AuditAction.TOTP_DISABLED, actor=user, origin=origin)


async def reset(session: AsyncSession, user_id: int) -> None:
    """Remove every second factor of the account (its TOTP credential, recovery codes and
    passkeys: the lost phone may hold them all), in the caller's transaction (not a use case:
    the admin console and the command call it inside their own, which write the audit row)."""
    await session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    await session.execute(delete(TotpCredential).where(TotpCredential.user_id == user_id))
    await passkeys.remove_all(session, user_id)


@use_case
async def reset_from_the_command_line(session: AsyncSession, email: str) -> User:
    """Turn off the two-factor of the account with `email`: for a site admin who lost both the
    phone and the recovery codes, with no other admin to do it in the console. Raises
    NotFound for an unknown address."""
    user = await session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        raise NotFound("No account has this address.")
    await reset(session, user.id)
    audit.record(
        session, audit.AuditAction.ADMIN_RESET_TWO_FACTOR, actor=None, subject=user, via="command"
    )
    return user
