"""Password hashing (argon2id, in a thread), random tokens stored as hashes, signed links."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import argon2
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

PASSWORD_MIN_LENGTH = 10
PASSWORD_MAX_LENGTH = 1024  # argon2 takes any length; this bounds the work one request can ask for
COMMON_PASSWORDS_FILE = Path(__file__).parent / "data" / "common-passwords.txt"


@cache
def common_passwords() -> frozenset[str]:
    return frozenset(
        line.strip().lower() for line in COMMON_PASSWORDS_FILE.read_text().splitlines() if line
    )


def password_problem(password: str, email: str) -> str | None:
    """Why this password is refused, or None if it is acceptable."""
    if len(password) < PASSWORD_MIN_LENGTH:
        return f"Use at least {PASSWORD_MIN_LENGTH} characters."
    if len(password) > PASSWORD_MAX_LENGTH:
        return f"Use at most {PASSWORD_MAX_LENGTH} characters."
    lowered = password.strip().lower()
    if lowered in (email.lower(), email.lower().split("@")[0]):
        return "Your password must not be your email address."
    if lowered in common_passwords():
        return "This password is among the most common ones; choose another."
    return None


class PasswordHasher:
    """argon2id hashing off the event loop. Tests use the cheapest parameters."""

    def __init__(self, profile: str = "default") -> None:
        if profile == "cheapest":
            self._hasher = argon2.PasswordHasher.from_parameters(argon2.profiles.CHEAPEST)
        else:
            self._hasher = argon2.PasswordHasher()  # RFC 9106 low-memory argon2id
        # Verified against when the email is unknown, so that costs the same as a wrong password.
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """True when the password matches. Costs the same when there is no hash to check."""
        try:
            return (
                await asyncio.to_thread(
                    self._hasher.verify, password_hash or self._dummy_hash, password
                )
                and password_hash is not None
            )
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)


def new_token() -> str:
    """A random, URL-safe secret of 256 bits."""
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """What the database keeps of a secret token: its SHA-256. A leaked table opens nothing."""
    return hashlib.sha256(token.encode()).hexdigest()


def same_secret(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


@dataclass(frozen=True)
class LinkSigner:
    """Signs the payload of an emailed link, with a salt per purpose so that a link made for one
    purpose is worthless for another."""

    secret_key: str

    def sign(self, purpose: str, payload: dict[str, Any]) -> str:
        return URLSafeTimedSerializer(self.secret_key, salt=f"issues.{purpose}").dumps(payload)

    def unsign(self, purpose: str, signed: str, max_age: int) -> dict[str, Any] | None:
        """The payload, or None when the signature is wrong, for another purpose, or expired."""
        try:
            payload = URLSafeTimedSerializer(self.secret_key, salt=f"issues.{purpose}").loads(
                signed, max_age=max_age
            )
        except (SignatureExpired, BadSignature):
            return None
        return payload if isinstance(payload, dict) else None
