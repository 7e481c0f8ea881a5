"""The security audit log (decision 0021): one row per security event, added to the session of
the change it records so that both commit together or neither does.

Callers add rows with `record` inside their own use case; a refusal that must be remembered
(a failed login, a wrong second-factor code) is recorded by `record_refusal`, in a transaction
of its own, because the refused change rolls back."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.models import AuditEvent, User
from app.services.transaction import use_case


class AuditAction(StrEnum):
    """Every action the log knows. New features add theirs here, so that the admin's filter and
    the export list them all."""

    LOGIN_SUCCEEDED = "login.succeeded"
    LOGIN_FAILED = "login.failed"
    LOGIN_THROTTLED = "login.throttled"
    LOGOUT = "logout"
    SESSIONS_ENDED = "sessions.ended"
    SIGNED_UP = "account.signed_up"
    EMAIL_VERIFIED = "email.verified"
    EMAIL_CHANGE_REQUESTED = "email.change_requested"
    EMAIL_CHANGED = "email.changed"
    PASSWORD_CHANGED = "password.changed"  # noqa: S105 (an action name)
    PASSWORD_RESET_REQUESTED = "password.reset_requested"  # noqa: S105 (an action name)
    PASSWORD_RESET = "password.reset"  # noqa: S105 (an action name)
    TOKEN_CREATED = "token.created"  # noqa: S105 (an action name)
    TOKEN_REVOKED = "token.revoked"  # noqa: S105 (an action name)
    ROLE_CHANGED = "role.changed"
    MEMBER_ADDED = "member.added"
    MEMBER_REMOVED = "member.removed"
    TOTP_ENABLED = "totp.enabled"
    TOTP_DISABLED = "totp.disabled"
    TOTP_FAILED = "totp.failed"
    RECOVERY_CODE_USED = "recovery_code.used"
    RECOVERY_CODES_REGENERATED = "recovery_codes.regenerated"
    PASSKEY_ADDED = "passkey.added"
    PASSKEY_REMOVED = "passkey.removed"
    PASSKEY_LOGIN = "passkey.login"
    PASSKEY_FAILED = "passkey.failed"
    SSO_LOGIN = "sso.login"
    SSO_LINKED = "sso.linked"
    SSO_FAILED = "sso.failed"
    ADMIN_DEACTIVATED = "admin.user_deactivated"
    ADMIN_REACTIVATED = "admin.user_reactivated"
    ADMIN_GRANTED = "admin.admin_granted"
    ADMIN_REVOKED = "admin.admin_revoked"
    ADMIN_RESET_TWO_FACTOR = "admin.two_factor_reset"
    ADMIN_TRANSFERRED_PROJECT = "admin.project_transferred"
    ADMIN_RETRIED_MAIL = "admin.mail_retried"
    ADMIN_RETRIED_WEBHOOK = "admin.webhook_retried"
    ADMIN_MERGED_PERSON = "admin.person_merged"  # a placeholder from an import, into an account


@dataclass(frozen=True)
class Origin:
    """Where a request came from, as the audit log keeps it."""

    address: str = ""
    user_agent: str = ""


NO_ORIGIN = Origin()  # a command-line change, a background job


def record(
    session: AsyncSession,
    action: AuditAction,
    *,
    actor: User | None,
    subject: User | None = None,
    origin: Origin = NO_ORIGIN,
    subject_email: str = "",
    **detail: Any,
) -> AuditEvent:
    """Add an audit row to the session's transaction: it commits with the caller's change.
    `subject` defaults to the actor (most events concern one's own account); `subject_email`
    names an address that has no account (a failed login for an unknown address)."""
    subject = subject if subject is not None else actor
    event = AuditEvent(
        action=str(action),
        actor_id=actor.id if actor else None,
        actor_email=actor.email if actor else "",
        subject_id=subject.id if subject else None,
        subject_email=subject.email if subject else subject_email[:320],
        client_address=origin.address[:64],
        user_agent=origin.user_agent[:200],
        detail=detail,
    )
    session.add(event)
    return event


@use_case
async def record_refusal(
    session: AsyncSession,
    action: AuditAction,
    *,
    actor: User | None,
    subject: User | None = None,
    origin: Origin = NO_ORIGIN,
    subject_email: str = "",
    **detail: Any,
) -> None:
    """Record an event whose change was refused, in a transaction of its own (the refused one
    rolled back). Call it after the refusal's rollback, before re-raising."""
    record(
        session,
        action,
        actor=actor,
        subject=subject,
        origin=origin,
        subject_email=subject_email,
        **detail,
    )
