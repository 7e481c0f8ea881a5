"""What runs once a transaction commits: named, typed hooks that the app factory wires.

A service notes what its transaction wrote (`note_activity`, `note_mail`, `note_deliveries`,
`note_released_files`, `note_account_closed`, `note_inbox`);
when that transaction commits, the dispatcher of the app whose sessionmaker made the session
calls each hook registered for it, and when it rolls back the notes are forgotten. The hooks
are wired in `create_app` (decision 0013): the live broker on SQLite, the mail and webhook
senders' `wake`. No listener is registered by importing a module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, sessionmaker

# Told the id of a project whose new activity rows just committed.
ActivityHook = Callable[[int], None]
# Told that a commit queued work for a background sender.
WakeHook = Callable[[], None]
# Told the ids of people whose inbox a commit changed (decision 0028).
InboxHook = Callable[[list[int]], None]
# Told the storage keys of files that a commit stopped referring to (decision 0020).
FilesHook = Callable[[list[str]], None]
# Told the id of a user whose account a commit closed (deactivated, decision 0022).
AccountHook = Callable[[int], None]

_NOTES = "issues.after_commit"  # the transaction's notes, in session.info


@dataclass
class _Notes:
    projects_with_activity: set[int] = field(default_factory=set)
    mail_queued: bool = False
    deliveries_queued: bool = False
    released_files: list[str] = field(default_factory=list)
    closed_accounts: set[int] = field(default_factory=set)
    inboxes: set[int] = field(default_factory=set)


def _notes(session: AsyncSession | Session) -> _Notes:
    info = session.info
    notes = info.get(_NOTES)
    if notes is None:
        notes = info[_NOTES] = _Notes()
    return notes


def note_activity(session: AsyncSession | Session, project_id: int) -> None:
    """The transaction wrote activity rows for this project."""
    _notes(session).projects_with_activity.add(project_id)


def note_mail(session: AsyncSession | Session) -> None:
    """The transaction queued mail in the outbox."""
    _notes(session).mail_queued = True


def note_deliveries(session: AsyncSession | Session) -> None:
    """The transaction queued webhook deliveries."""
    _notes(session).deliveries_queued = True


def note_released_files(session: AsyncSession | Session, keys: list[str]) -> None:
    """The transaction removed the rows that named these stored files: remove the files once
    it commits (never before: a rollback keeps the rows, and so the files)."""
    _notes(session).released_files.extend(keys)


def note_account_closed(session: AsyncSession | Session, user_id: int) -> None:
    """The transaction deactivated this user: end their open streams once it commits."""
    _notes(session).closed_accounts.add(user_id)


def note_inbox(session: AsyncSession | Session, user_ids: list[int]) -> None:
    """The transaction changed these people's inbox (new, read or done notifications)."""
    _notes(session).inboxes.update(user_ids)


@dataclass
class AfterCommit:
    """The hooks of one app's sessions, called in order once a noted transaction commits."""

    activity_committed: list[ActivityHook] = field(default_factory=list)
    mail_queued: list[WakeHook] = field(default_factory=list)
    deliveries_queued: list[WakeHook] = field(default_factory=list)
    files_released: list[FilesHook] = field(default_factory=list)
    account_closed: list[AccountHook] = field(default_factory=list)
    inbox_changed: list[InboxHook] = field(default_factory=list)

    def attach(self, maker: sessionmaker[Session]) -> None:
        """Listen to the sessions `maker` makes (the sync side of the app's async sessions)."""
        event.listen(maker, "after_commit", self._committed)
        event.listen(maker, "after_soft_rollback", self._rolled_back)

    def _committed(self, session: Session) -> None:
        notes: _Notes | None = session.info.pop(_NOTES, None)
        if notes is None:
            return
        for project_id in sorted(notes.projects_with_activity):
            for tell in self.activity_committed:
                tell(project_id)
        if notes.mail_queued:
            for wake in self.mail_queued:
                wake()
        if notes.deliveries_queued:
            for wake in self.deliveries_queued:
                wake()
        if notes.released_files:
            for release in self.files_released:
                release(list(notes.released_files))
        for user_id in sorted(notes.closed_accounts):
            for tell in self.account_closed:
                tell(user_id)
        if notes.inboxes:
            for tell in self.inbox_changed:
                tell(sorted(notes.inboxes))

    def _rolled_back(self, session: Session, previous_transaction: Any) -> None:
        session.info.pop(_NOTES, None)
