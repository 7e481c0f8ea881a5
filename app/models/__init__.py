"""What the data is. Importing this package registers every table on Base.metadata."""

from app.models.account import AccountToken, AuthSession, LoginThrottle, TokenPurpose
from app.models.activity import Activity
from app.models.api_token import ApiToken, TokenScope
from app.models.issue import (
    Comment,
    Issue,
    IssueLabel,
    IssueSearch,
    Label,
    StatusCategory,
    Watcher,
    WorkflowStatus,
)
from app.models.notification import Notification, SavedSearch
from app.models.outbox import MailStatus, OutboxMessage
from app.models.project import Membership, Project, Role
from app.models.rate_limit import RateLimitBucket
from app.models.user import User
from app.models.webhook import DeliveryStatus, Webhook, WebhookDelivery

__all__ = [
    "AccountToken",
    "Activity",
    "ApiToken",
    "AuthSession",
    "Comment",
    "DeliveryStatus",
    "Issue",
    "IssueLabel",
    "IssueSearch",
    "Label",
    "LoginThrottle",
    "MailStatus",
    "Membership",
    "Notification",
    "OutboxMessage",
    "Project",
    "RateLimitBucket",
    "Role",
    "SavedSearch",
    "StatusCategory",
    "TokenPurpose",
    "TokenScope",
    "User",
    "Watcher",
    "Webhook",
    "WebhookDelivery",
    "WorkflowStatus",
]
