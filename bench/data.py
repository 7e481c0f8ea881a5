"""Realistic tracker data at a chosen size, bulk-loaded into PostgreSQL (COPY) or SQLite.

Run with `.venv/bin/python -m bench.data --database-url postgresql://postgres@127.0.0.1/issues_bench
--issues 100000` (or a `sqlite:///path.db` URL, up to 100,000 issues). The database is dropped and
made again (a PostgreSQL database's name must start with `issues_bench`), migrated, and filled:
500 projects (one in ten public), 20,000 validated users, 5 to 60 members per project, each
project's workflow and labels, issues spread over the projects with a Zipf skew (project P1 holds
exactly 500, for the board benchmark; every issue numbered a multiple of 100 has exactly 20
comments, for the issue page), about 3 comments per issue, labels, watchers, the event log with
gap-free per-project sequence numbers, and the search documents. Prints the time per table.

Users 1 to 200 are the load generator's accounts (`user<N>@example.com`, password
BENCH_PASSWORD): users 1 to 10 belong to projects P1 to P200, the others to P1 and 20 more.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from app.config import normalise_database_url
from app.models.issue import DEFAULT_WORKFLOW, POSITION_STEP, Priority
from app.security import PasswordHasher
from bench.loading import Loader, Rows, open_loader

BENCH_PASSWORD = "bench password 2026"  # the load generator logs in with it
LABELS = ("bug", "feature", "ui", "backend", "docs", "wontfix", "performance", "security")
PRIORITIES = tuple(priority.value for priority in Priority)
TYPES = ("bug", "feature", "task")
NAME_TEXT = "Ada Alan Barbara Claude Dennis Edsger Frances Grace Guido Hedy Ivan Jean Ken"
SURNAME_TEXT = "Allen Backus Hopper Kay Knuth Lamport Liskov Ritchie Shannon Thompson Wirth"
FIRST_NAMES, LAST_NAMES = NAME_TEXT.split(), SURNAME_TEXT.split()
ISSUE_CHUNK = 20_000  # issues generated (and copied) at a time: bounded memory at any size

# Common words of a software tracker first; a long tail of made-up words follows. Words are
# drawn with Zipf-like weights, so a few are everywhere and most are rare.
COMMON_TEXT = """
login page error crash slow timeout user button form save load fails when after before the
with on in of to and for from should not cannot broken update delete create list search filter
sort export import email notification settings account password reset session cookie token api
endpoint request response server client database query index migration cache memory cpu disk
upload download file image preview render layout mobile desktop browser safari chrome firefox
header footer sidebar menu modal dialog tooltip dropdown checkbox input field validation message
warning report dashboard chart graph table column row cell pagination scroll keyboard shortcut
theme dark light color font icon translation language locale date time zone calendar schedule
webhook integration slack github deploy build release version test flaky retry queue worker job
"""
COMMON_WORDS = COMMON_TEXT.split()
SYLLABLE_TEXT = "ka lo mi ne ru sa te vi zo pa qu re ti xo ya be do fu gi ha"
SYLLABLES = SYLLABLE_TEXT.split()


@dataclass(frozen=True)
class Shape:
    """What to make. The defaults are the tracker the page and scale benchmarks run on."""

    issues: int
    projects: int = 500
    public_every: int = 10  # projects whose id is a multiple of this are public
    users: int = 20_000
    bench_users: int = 200  # users 1..bench_users are the load generator's accounts
    wide_users: int = 10  # users 1..wide_users belong to projects 1..wide_projects
    wide_projects: int = 200
    narrow_projects: int = 20  # the other bench users belong to P1 and this many more
    members: tuple[int, int] = (5, 60)
    board_issues: int = 500  # P1 holds exactly this many issues (0: no such project)
    skew: float = 1.0  # Zipf exponent of the issues per project (0: uniform)
    comments: tuple[int, ...] = (0, 1, 1, 2, 2, 3, 3, 3, 4, 4, 5, 6)  # drawn per issue
    twenty_comments_every: int = 100  # issue numbers that are multiples get 20 (0: none)
    labels_per_issue: tuple[int, ...] = (0, 0, 1, 1, 1, 2, 3)
    history: bool = True  # the event log and the watchers
    done_share: float = 0.5


def vocabulary(rng: random.Random) -> tuple[list[str], list[float]]:
    made_up = {
        "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))) for _ in range(4000)
    }
    words = COMMON_WORDS + sorted(made_up - set(COMMON_WORDS))
    # With this offset the commonest word is in about a third of the issues, a middling one of
    # the common list in about one in ten, a made-up one in a handful.
    return words, [1 / (rank + 50) for rank in range(len(words))]


class Text:
    """Texts cut from one long stream of Zipf-drawn words: as varied as drawing each word,
    and an order of magnitude cheaper at millions of texts."""

    def __init__(self, rng: random.Random, stream_length: int = 1 << 20) -> None:
        self.rng = rng
        words, weights = vocabulary(rng)
        self.stream = rng.choices(words, weights=weights, k=stream_length)

    def words_of(self, low: int, high: int) -> str:
        count = self.rng.randint(low, high)
        start = self.rng.randrange(len(self.stream) - count)
        return " ".join(self.stream[start : start + count])


@dataclass
class ProjectPlan:
    id: int
    key: str
    members: list[int]
    statuses: list[tuple[int, str, str]]  # (id, name, category) in board order
    labels: list[int]
    issues: int = 0


class Generator:
    """Rows for every table, in the order foreign keys need them."""

    def __init__(self, shape: Shape, seed: int, password_hash: str, now: datetime) -> None:
        self.shape, self.rng, self.password_hash = shape, random.Random(seed), password_hash
        self.text = Text(self.rng)
        self.now = now
        self.start = now - timedelta(days=730)  # two years of history
        self.projects: list[ProjectPlan] = []
        self.comment_id = self.activity_id = 0

    # --- People and projects -------------------------------------------------------------

    def users(self) -> Rows:
        columns = ("id", "email", "display_name", "handle", "password_hash", "email_verified_at")
        columns += ("is_admin", "notify_by_email", "created_at")
        rows = [
            (
                n,
                f"user{n}@example.com",
                f"{self.rng.choice(FIRST_NAMES)} {self.rng.choice(LAST_NAMES)}",
                f"user{n}",
                self.password_hash,
                self.start,
                n == self.shape.users,  # one site admin, not among the bench users
                True,
                self.start,
            )
            for n in range(1, self.shape.users + 1)
        ]
        return "user", columns, rows

    def plan_projects(self) -> list[Rows]:
        shape, rng = self.shape, self.rng
        outsiders = range(shape.bench_users + 1, shape.users + 1)
        memberships, status_rows, label_rows, project_rows = [], [], [], []
        for project_id in range(1, shape.projects + 1):
            people = rng.sample(outsiders, min(len(outsiders), rng.randint(*shape.members)))
            roles = {user: "member" for user in people}
            roles[people[0]] = "owner"
            if len(people) > 1:
                roles[people[1]] = "admin"
            if project_id <= shape.wide_projects:
                roles.update(dict.fromkeys(range(1, shape.wide_users + 1), "member"))
            statuses = []
            for position, (name, category) in enumerate(DEFAULT_WORKFLOW):
                statuses.append((len(status_rows) + 1, name, category.value))
                status_rows.append(
                    (len(status_rows) + 1, project_id, name, category.value, position)
                )
            labels = []
            for name in LABELS:
                labels.append(len(label_rows) + 1)
                label_rows.append((len(label_rows) + 1, project_id, name, "#6b7280"))
            self.projects.append(ProjectPlan(project_id, f"P{project_id}", [], statuses, labels))
            project_rows.append(roles)
        # Bench users beyond the wide ones: P1 (the board) and a few more each.
        for user in range(shape.wide_users + 1, shape.bench_users + 1):
            chosen = rng.sample(range(2, shape.projects + 1), shape.narrow_projects)
            for project_id in [1, *chosen]:
                project_rows[project_id - 1][user] = "member"
        created = self.start - timedelta(days=30)
        for plan, roles in zip(self.projects, project_rows, strict=True):
            plan.members = sorted(roles)
            memberships += [(plan.id, user, role, created) for user, role in roles.items()]
        return [
            ("membership", ("project_id", "user_id", "role", "created_at"), memberships),
            ("workflow_status", ("id", "project_id", "name", "category", "position"), status_rows),
            ("label", ("id", "project_id", "name", "color"), label_rows),
        ]

    def project_rows(self) -> Rows:
        """Written first with zero counters; finish() sets them from what was loaded."""
        columns = ("id", "key", "name", "description", "is_public", "last_issue_number")
        columns += ("last_event_seq", "created_at")
        created = self.start - timedelta(days=30)
        rows = [
            (
                p.id,
                p.key,
                f"Project {p.id}",
                self.text.words_of(5, 30),
                p.id % self.shape.public_every == 0,
                0,
                0,
                created,
            )
            for p in self.projects
        ]
        return "project", columns, rows

    def project_events(self) -> Rows:
        created = self.start - timedelta(days=30)
        rows = []
        for plan in self.projects:
            self.activity_id += 1
            payload = json.dumps({"key": plan.key, "name": f"Project {plan.id}"})
            rows.append(
                (
                    self.activity_id,
                    plan.id,
                    plan.members[0],
                    None,
                    "project.created",
                    payload,
                    created,
                )
            )
        return ACTIVITY_TABLE, ACTIVITY_COLUMNS, rows

    # --- Issues --------------------------------------------------------------------------

    def project_of_each_issue(self) -> Iterator[ProjectPlan]:
        """P1 gets exactly board_issues, spread over time; the others share the rest by a Zipf
        law on their id (P2 the biggest)."""
        shape, rng = self.shape, self.rng
        board = min(shape.board_issues, shape.issues)
        stride = shape.issues // board if board else 0
        others = self.projects[1:] if board else self.projects
        weights = [1 / (rank + 1) ** shape.skew for rank in range(len(others))]
        cumulative, total = [], 0.0
        for weight in weights:
            total += weight
            cumulative.append(total)
        on_board = 0
        for n in range(shape.issues):
            if stride and n % stride == 0 and on_board < board:
                on_board += 1
                yield self.projects[0]
            else:
                yield rng.choices(others, cum_weights=cumulative)[0]

    def issue_chunks(self) -> Iterator[list[Rows]]:
        """The issues in creation order (ids and numbers grow with time), ISSUE_CHUNK at a time,
        with their labels, comments, watchers and events."""
        span = (self.now - self.start).total_seconds()
        owners = self.project_of_each_issue()
        issue_id = 0
        while issue_id < self.shape.issues:
            rows: dict[str, list[tuple[Any, ...]]] = {name: [] for name in CHUNK_TABLES}
            for _ in range(min(ISSUE_CHUNK, self.shape.issues - issue_id)):
                issue_id += 1
                created = self.start + timedelta(seconds=span * issue_id / (self.shape.issues + 1))
                self._issue(rows, issue_id, next(owners), created)
            yield [(name, CHUNK_TABLES[name], rows[name]) for name in CHUNK_TABLES if rows[name]]

    def _issue(
        self,
        rows: dict[str, list[tuple[Any, ...]]],
        issue_id: int,
        plan: ProjectPlan,
        created: datetime,
    ) -> None:
        shape, rng, text = self.shape, self.rng, self.text
        plan.issues += 1
        number, people = plan.issues, plan.members
        reporter = rng.choice(people)
        assignee = rng.choice(people) if rng.random() < 0.7 else None
        priority = rng.choice(PRIORITIES)
        title = text.words_of(3, 9).capitalize()
        twenty = shape.twenty_comments_every and number % shape.twenty_comments_every == 0
        comment_count = 20 if twenty else rng.choice(shape.comments)
        # The status it ends in, and the moves that took it there from the first columns.
        first = rng.randrange(2)
        done = rng.random() < shape.done_share
        final = len(plan.statuses) - 1 if done else rng.randrange(len(plan.statuses) - 1)
        path = [first] + [rng.randrange(len(plan.statuses)) for _ in range(rng.choice((0, 0, 1)))]
        if path[-1] != final:
            path.append(final)
        path = [s for i, s in enumerate(path) if i == 0 or s != path[i - 1]]
        updates = rng.choice((0, 0, 1, 1, 2)) if shape.history else 0
        kinds = ["comment"] * comment_count + ["issue.updated"] * updates
        kinds += ["issue.moved"] * (len(path) - 1)
        rng.shuffle(kinds)
        window = min(45 * 86400.0, (self.now - created).total_seconds())
        offsets = sorted(rng.random() * window for _ in kinds)

        watchers = {reporter} | ({assignee} if assignee else set())
        events = []
        if shape.history:
            payload = json.dumps(
                {"number": number, "title": title, "status": plan.statuses[path[0]][1]}
            )
            events.append((reporter, "issue.created", payload, created))
        version, step, before_priority = 1, 0, rng.choice(PRIORITIES)
        updates_left = updates
        updated = created
        for kind, offset in zip(kinds, offsets, strict=True):
            at = created + timedelta(seconds=offset)
            actor = rng.choice(people)
            if kind == "comment":
                self.comment_id += 1
                body = text.words_of(5, 40)
                if rng.random() < 0.1:  # mentions and references, as people write them
                    body += f" @user{rng.choice(people)}"
                if rng.random() < 0.05:
                    body += f" see {plan.key}-{rng.randint(1, number)}"
                rows["comment"].append((self.comment_id, issue_id, actor, body, at))
                watchers.add(actor)
                if shape.history:
                    events.append(
                        (actor, "comment.added", f'{{"comment_id": {self.comment_id}}}', at)
                    )
                continue
            version, updated = version + 1, at
            if kind == "issue.updated":
                updates_left -= 1  # the last priority change lands on the issue's priority
                after = priority if updates_left == 0 else rng.choice(PRIORITIES)
                change = {"version": version, "changes": {"priority": [before_priority, after]}}
                before_priority = after
            else:
                step += 1
                was, now = plan.statuses[path[step - 1]], plan.statuses[path[step]]
                change = {
                    "version": version,
                    "changes": {"status": [was[1], now[1]]},
                    "status_id": now[0],
                }
            events.append((actor, kind, json.dumps(change), at))
        status_id = plan.statuses[path[-1]][0]
        rows["issue"].append(
            (
                issue_id,
                plan.id,
                number,
                title,
                text.words_of(10, 80),
                status_id,
                priority,
                rng.choice(TYPES),
                reporter,
                assignee,
                number * POSITION_STEP,
                version,
                created,
                updated,
            )
        )
        for label_id in rng.sample(plan.labels, rng.choice(shape.labels_per_issue)):
            rows["issue_label"].append((issue_id, label_id))
        if shape.history:
            rows["watcher"] += [(issue_id, user, True, created) for user in watchers]
            for actor, kind, payload, at in events:
                self.activity_id += 1
                rows[ACTIVITY_TABLE].append(
                    (self.activity_id, plan.id, actor, issue_id, kind, payload, at)
                )


# The event log goes through a staging table: the loader numbers each project's events in time
# order (seq) with one window function, which no chunked generator could do.
ACTIVITY_TABLE = "activity_load"
ACTIVITY_COLUMNS = ("id", "project_id", "actor_id", "issue_id", "kind", "payload", "created_at")
CHUNK_TABLES: dict[str, tuple[str, ...]] = {
    "issue": (
        *("id", "project_id", "number", "title", "description", "status_id", "priority", "type"),
        *("reporter_id", "assignee_id", "position", "version", "created_at", "updated_at"),
    ),
    "issue_label": ("issue_id", "label_id"),
    "comment": ("id", "issue_id", "author_id", "body", "created_at"),
    "watcher": ("issue_id", "user_id", "watching", "created_at"),
    ACTIVITY_TABLE: ACTIVITY_COLUMNS,
}


async def load(loader: Loader, shape: Shape, seed: int) -> None:
    """Fill a freshly migrated database through `loader`."""
    started = time.perf_counter()
    # Hashed once with the production parameters: logging in through the form costs what it does.
    password_hash = await PasswordHasher("default").hash(BENCH_PASSWORD)
    generator = Generator(shape, seed, password_hash, datetime.now(UTC).replace(microsecond=0))
    loader.timed("password hash and vocabulary", 1, time.perf_counter() - started)
    await loader.copy(*generator.users())
    people = generator.plan_projects()
    await loader.copy(*generator.project_rows())
    for rows in people:
        await loader.copy(*rows)
    if shape.history:
        await loader.copy(*generator.project_events())
    chunks = generator.issue_chunks()
    copying: asyncio.Task[None] | None = None
    while True:
        # The next chunk is made in a thread while the last one is copied: the database server
        # works on its own core meanwhile.
        started = time.perf_counter()
        chunk = await asyncio.to_thread(next, chunks, None)
        loader.timed("generating rows (Python)", 0, time.perf_counter() - started)
        if copying is not None:
            await copying
        if chunk is None:
            break
        copying = asyncio.create_task(loader.copy_all(chunk))
    await loader.finish(
        {plan.id: plan.issues for plan in generator.projects}, history=shape.history
    )


async def main(arguments: argparse.Namespace) -> None:
    url = normalise_database_url(arguments.database_url)
    shape = Shape(issues=arguments.issues)
    started = time.perf_counter()
    async with open_loader(url, shape.issues) as loader:
        await load(loader, shape, arguments.seed)
        loader.report(
            f"{shape.issues:,} issues, seed {arguments.seed}", time.perf_counter() - started
        )
    print(
        f"\nLog in as user1@example.com .. user{shape.bench_users}@example.com with password "
        f"{BENCH_PASSWORD!r}. Board: P1 ({shape.board_issues} issues); issues numbered a "
        f"multiple of {shape.twenty_comments_every} have 20 comments."
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        required=True,
        help="postgresql://.../issues_bench... (dropped and made again) or sqlite:///file.db",
    )
    parser.add_argument("--issues", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=2026)
    asyncio.run(main(parser.parse_args()))
