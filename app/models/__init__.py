"""What the data is. Importing this package registers every table on Base.metadata."""

from app.models.activity import Activity
from app.models.issue import Comment, Issue, IssueLabel, Label
from app.models.project import Membership, Project, Role
from app.models.user import User

__all__ = [
    "Activity",
    "Comment",
    "Issue",
    "IssueLabel",
    "Label",
    "Membership",
    "Project",
    "Role",
    "User",
]
