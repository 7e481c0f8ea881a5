"""The activity log in words: one line per change, as mail digests, the inbox, feeds and the
issue timeline say it."""

from __future__ import annotations

from app.models import Activity


def describe(activity: Activity) -> str:
    """One line of history in words, such as 'Ann changed status from To do to Done'."""
    who = activity.actor.display_name if activity.actor else "Someone"
    if activity.kind == "issue.created":
        return f"{who} created the issue"
    if activity.kind == "comment.added":
        return f"{who} commented"
    if activity.kind == "comment.edited":
        return f"{who} edited a comment"
    if activity.kind == "comment.deleted":
        return f"{who} deleted a comment"
    if activity.kind in ("attachment.added", "attachment.deleted"):
        verb = "attached" if activity.kind == "attachment.added" else "deleted the file"
        return f"{who} {verb} {activity.payload.get('file_name', 'a file')}"
    if activity.kind in ("issue.updated", "issue.moved"):
        parts = []
        for name, (before, after) in activity.payload.get("changes", {}).items():
            if name == "description":
                parts.append("edited the description")
            elif not after:
                parts.append(f"cleared {name} (was {before})")
            elif not before:
                parts.append(f"set {name} to {after}")
            else:
                parts.append(f"changed {name} from {before} to {after}")
        return f"{who} " + ", ".join(parts) if parts else f"{who} updated the issue"
    if activity.kind in ("relation.added", "relation.removed"):
        done = "added" if activity.kind == "relation.added" else "removed"
        relation = activity.payload.get("relation", "relates_to").replace("_", " ")
        # Another project's issue is never named: not every reader of this line may read it.
        other = activity.payload.get("other", "an issue in another project")
        return f"{who} {done} the relation: {relation} {other}"
    if activity.kind in PROJECT_CHANGES:
        return f"{who} {PROJECT_CHANGES[activity.kind]}"
    if activity.kind == "member.added":
        payload = activity.payload
        return f"{who} added {payload.get('user', 'someone')} as {payload.get('role', 'member')}"
    if activity.kind == "member.role_changed":
        return f"{who} changed a member's role to {activity.payload.get('role', 'member')}"
    if activity.kind.startswith("milestone."):
        verb = activity.kind.removeprefix("milestone.")
        return f"{who} {verb} the milestone {activity.payload.get('title', '')}".rstrip()
    return f"{who}: {activity.kind}"


# Changes to a project itself, in words (project feeds show them beside the issues').
PROJECT_CHANGES = {
    "project.created": "created the project",
    "project.updated": "changed the project's settings",
    "project.archived": "archived the project",
    "project.unarchived": "unarchived the project",
    "project.labels_changed": "changed the labels",
    "project.workflow_changed": "changed the workflow",
    "project.imported": "imported issues",
    "member.removed": "removed a member",
}
