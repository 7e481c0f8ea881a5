"""Exports built in the documented formats: GitHub's REST API objects and Jira's CSV."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path
from typing import Any

API = "https://api.github.com/repos/acme/rocket"


def github_user(login: str) -> dict[str, Any]:
    return {
        "login": login,
        "id": abs(hash(login)) % 10**7,
        "type": "User",
        "url": f"https://api.github.com/users/{login}",
    }


def github_issue(
    number: int,
    title: str,
    *,
    state: str = "open",
    body: str | None = "",
    user: str = "octocat",
    labels: list[str] = (),
    milestone: str | None = None,
    assignee: str | None = None,
    created_at: str = "2024-01-02T10:00:00Z",
    closed_at: str | None = None,
    pull_request: bool = False,
) -> dict[str, Any]:
    issue: dict[str, Any] = {
        "url": f"{API}/issues/{number}",
        "html_url": f"https://github.com/acme/rocket/issues/{number}",
        "id": 1000 + number,
        "number": number,
        "title": title,
        "user": github_user(user),
        "labels": [
            {"id": 10 + i, "name": name, "color": "f29513", "default": False}
            for i, name in enumerate(labels)
        ],
        "state": state,
        "locked": False,
        "assignee": github_user(assignee) if assignee else None,
        "assignees": [github_user(assignee)] if assignee else [],
        "milestone": {"number": 1, "title": milestone, "state": "open"} if milestone else None,
        "comments": 0,
        "created_at": created_at,
        "updated_at": closed_at or created_at,
        "closed_at": closed_at,
        "author_association": "OWNER",
        "body": body,
    }
    if pull_request:
        issue["pull_request"] = {"url": f"{API}/pulls/{number}"}
    return issue


def github_comment(
    number: int, body: str, *, user: str = "octocat", created_at: str = "2024-01-03T09:30:00Z"
) -> dict[str, Any]:
    return {
        "id": 5000 + number,
        "issue_url": f"{API}/issues/{number}",
        "body": body,
        "user": github_user(user),
        "created_at": created_at,
        "updated_at": created_at,
    }


def write_github(
    folder: Path,
    issues: list[dict],
    comments: list[dict] = (),
    labels: list[dict] | None = None,
    milestones: list[dict] | None = None,
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "issues.json").write_text(json.dumps(issues))
    (folder / "comments.json").write_text(json.dumps(list(comments)))
    if labels is not None:
        (folder / "labels.json").write_text(json.dumps(labels))
    if milestones is not None:
        (folder / "milestones.json").write_text(json.dumps(milestones))
    return folder


def zip_folder(folder: Path, target: Path) -> Path:
    with zipfile.ZipFile(target, "w") as archive:
        for file in sorted(folder.iterdir()):
            archive.write(file, f"rocket-export/{file.name}")
    return target


JIRA_HEADER = [
    "Summary",
    "Issue key",
    "Issue id",
    "Issue Type",
    "Status",
    "Priority",
    "Assignee",
    "Reporter",
    "Created",
    "Updated",
    "Labels",
    "Labels",
    "Description",
    "Comment",
    "Comment",
]


def jira_row(
    key: str,
    summary: str,
    *,
    type: str = "Bug",
    status: str = "To Do",
    priority: str = "Medium",
    assignee: str = "",
    reporter: str = "jdoe",
    created: str = "04/Dec/26 5:53 PM",
    updated: str = "04/Dec/26 6:10 PM",
    labels: tuple[str, str] = ("", ""),
    description: str = "",
    comments: tuple[str, str] = ("", ""),
) -> list[str]:
    return [
        summary,
        key,
        str(10000 + int(key.split("-")[1])),
        type,
        status,
        priority,
        assignee,
        reporter,
        created,
        updated,
        *labels,
        description,
        *comments,
    ]


def jira_csv(rows: list[list[str]], header: list[str] = JIRA_HEADER) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()
