"""Passkeys (WebAuthn credentials) and the single-use challenges of their ceremonies."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, UTCDateTime, utcnow
from app.models.user import User


class Passkey(Base):
    """One registered WebAuthn credential of a user (decision 0024). Only the public key is
    kept; the private key never leaves the authenticator."""

    __tablename__ = "passkey"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    # The authenticator's id for the credential: at most 1023 bytes by the spec.
    credential_id: Mapped[bytes] = mapped_column(LargeBinary(1023), unique=True)
    # COSE-encoded, as the attestation gave it.
    public_key: Mapped[bytes] = mapped_column(LargeBinary(2048))
    # The WebAuthn user.id the credential was made for: the same random handle for all of one
    # user's passkeys, checked against the userHandle of a passwordless sign-in.
    user_handle: Mapped[bytes] = mapped_column(LargeBinary(64))
    sign_count: Mapped[int] = mapped_column(Integer, default=0)
    # Comma-separated hints for the browser ("internal,hybrid"), from the registration.
    transports: Mapped[str] = mapped_column(String(200), default="")
    aaguid: Mapped[str] = mapped_column(String(36), default="")
    # Synced passkeys (backup eligible and backed up) can be used on the owner's other devices.
    backup_eligible: Mapped[bool] = mapped_column(Boolean, default=False)
    backed_up: Mapped[bool] = mapped_column(Boolean, default=False)
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    user: Mapped[User] = relationship(lazy="raise")

    def __repr__(self) -> str:
        state = self.__dict__
        return f"<Passkey {state.get('id')} of user {state.get('user_id')}>"


class WebAuthnChallenge(Base):
    """A challenge handed to a browser for one ceremony: deleted when it is answered (rightly
    or not), so that no answer can be replayed, whichever worker sees it."""

    __tablename__ = "webauthn_challenge"

    id: Mapped[int] = mapped_column(primary_key=True)
    challenge: Mapped[bytes] = mapped_column(LargeBinary(64), unique=True)
    # "register", "sign_in" or "second_factor".
    purpose: Mapped[str] = mapped_column(String(20))
    # Whose ceremony it is; None for a passwordless sign-in (anyone's passkey may answer).
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("user.id", ondelete="CASCADE"), index=True, default=None
    )
    # A registration's WebAuthn user.id, kept until the answer comes back to be stored with it.
    user_handle: Mapped[bytes | None] = mapped_column(LargeBinary(64), default=None)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
