"""What the data is. Importing this package registers every table on Base.metadata."""

from app.models.account import AccountToken, AuthSession, LoginThrottle, TokenPurpose
from app.models.activity import Activity
from app.models.api_token import ApiToken, TokenScope
from app.models.attachment import Attachment
from app.models.audit import AuditEvent
from app.models.external_identity import ExternalIdentity
from app.models.feed import FeedKey
from app.models.import_job import ImportJob, ImportKind, ImportStatus
from app.models.issue import (
    Comment,
    Issue,
    IssueLabel,
    IssueSearch,
    IssueType,
    Label,
    Priority,
    StatusCategory,
    Watcher,
    WorkflowStatus,
)
from app.models.milestone import Milestone
from app.models.notification import Notification, SavedSearch
from app.models.outbox import MailStatus, OutboxMessage
from app.models.passkey import Passkey, WebAuthnChallenge
from app.models.project import Membership, Project, Role
from app.models.rate_limit import RateLimitBucket
from app.models.relation import IssueRelation, RelationKind, RelationType
from app.models.two_factor import RecoveryCode, TotpCredential
from app.models.user import User
from app.models.webhook import DeliveryStatus, Webhook, WebhookDelivery

# Ids and versions are 32-bit integers in the database: larger numbers name nothing.
LARGEST_ID = 2**31 - 1

__all__ = [
    "LARGEST_ID",
    "AccountToken",
    "Activity",
    "ApiToken",
    "Attachment",
    "AuditEvent",
    "AuthSession",
    "Comment",
    "DeliveryStatus",
    "ExternalIdentity",
    "FeedKey",
    "ImportJob",
    "ImportKind",
    "ImportStatus",
    "Issue",
    "IssueLabel",
    "IssueRelation",
    "IssueSearch",
    "IssueType",
    "Label",
    "LoginThrottle",
    "MailStatus",
    "Membership",
    "Milestone",
    "Notification",
    "OutboxMessage",
    "Passkey",
    "Priority",
    "Project",
    "RateLimitBucket",
    "RecoveryCode",
    "RelationKind",
    "RelationType",
    "Role",
    "SavedSearch",
    "StatusCategory",
    "TokenPurpose",
    "TokenScope",
    "TotpCredential",
    "User",
    "Watcher",
    "WebAuthnChallenge",
    "Webhook",
    "WebhookDelivery",
    "WorkflowStatus",
]
