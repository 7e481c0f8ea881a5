"""Searching issues: every term against real data, pages, visibility, CSV and saved searches."""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import json
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Forbidden, Invalid, NotFound
from app.models import Issue, IssueSearch, Label, Project, SavedSearch, User, WorkflowStatus
from app.services import comments, issues, search
from app.services.search import SORTS, QueryError, finder
from app.services.search.documents import DOCUMENT_MAX_BYTES
from tests.factories import add_member, make_project, make_user
from tests.services.test_query_language import QUERIES

# --- A small tracker to search ----------------------------------------------------------------


@dataclass
class World:
    alice: User  # member of WEB (private) and owner of PUB (public)
    bob: User  # member of WEB only
    carol: User  # owner of SEC (private), which alice and bob cannot see
    web: Project
    pub: Project
    sec: Project


async def new_issue(
    session: AsyncSession,
    actor: User,
    project: Project,
    title: str,
    *,
    status: str | None = None,
    labels: tuple[str, ...] = (),
    assignee: User | None = None,
    created: datetime | None = None,
    updated: datetime | None = None,
    **fields: Any,
) -> Issue:
    """An issue made through the service, then assigned and dated as asked, and its search
    document written (the service may write it too: refreshing is idempotent)."""
    status_id = None
    if status is not None:
        status_id = await session.scalar(
            select(WorkflowStatus.id).where(
                WorkflowStatus.project_id == project.id, WorkflowStatus.name == status
            )
        )
    label_ids = [await label_id(session, project, name) for name in labels]
    issue = await issues.create_issue(
        session, actor, project.id, title=title, status_id=status_id, label_ids=label_ids, **fields
    )
    # Set directly, so that a test can pick any assignee and any moment.
    changes = {"assignee_id": assignee.id if assignee else None}
    changes |= {"created_at": created, "updated_at": updated}
    changes = {name: value for name, value in changes.items() if value is not None}
    if changes:
        await session.execute(update(Issue).where(Issue.id == issue.id).values(**changes))
    await search.refresh_search_document(session, issue.id)
    await session.commit()
    return issue


async def label_id(session: AsyncSession, project: Project, name: str) -> int:
    found = await session.scalar(
        select(Label.id).where(Label.project_id == project.id, Label.name == name)
    )
    if found is None:
        label = Label(project_id=project.id, name=name)
        session.add(label)
        await session.commit()
        found = label.id
    return found


@pytest.fixture
async def world(session: AsyncSession) -> World:
    alice = await make_user(session, email="alice@example.com")
    bob = await make_user(session, email="bob@example.com")
    carol = await make_user(session, email="carol@example.com")
    web = await make_project(session, alice, key="WEB")
    await add_member(session, web, bob)
    pub = await make_project(session, alice, key="PUB", is_public=True)
    sec = await make_project(session, carol, key="SEC")
    return World(alice, bob, carol, web, pub, sec)


async def found(
    session: AsyncSession, viewer: User | None, query: str, **options: Any
) -> list[str]:
    page = await search.search_issues(session, viewer, query, **options)
    return sorted(issue.title for issue in page.issues)


# --- Search documents -------------------------------------------------------------------------


async def test_refreshing_a_document_inserts_it_then_replaces_it(
    session: AsyncSession, world: World
) -> None:
    issue = await new_issue(session, world.alice, world.web, "Login is slow")
    await session.execute(IssueSearch.__table__.delete())
    await session.commit()
    assert await found(session, world.alice, "login") == []

    await search.refresh_search_document(session, issue.id)
    await session.commit()
    assert await found(session, world.alice, "login") == ["Login is slow"]

    await session.execute(update(Issue).where(Issue.id == issue.id).values(title="Signup fails"))
    await search.refresh_search_document(session, issue.id)
    await session.commit()
    assert await found(session, world.alice, "login") == []
    assert await found(session, world.alice, "signup") == ["Signup fails"]
    assert await session.scalar(select(func.count()).select_from(IssueSearch)) == 1


async def test_a_text_past_the_document_limit_is_cut_and_still_found(
    session: AsyncSession, world: World
) -> None:
    """On PostgreSQL (whose tsvector has a size limit) a text past DOCUMENT_MAX_BYTES is cut
    where a character is whole (two-byte letters here, so a cut by bytes could split one);
    what comes before the cut is found. SQLite's FTS5 index takes it whole."""
    long = "zebrafinch " + "é" * (DOCUMENT_MAX_BYTES // 2) + " lastword"
    issue = await new_issue(session, world.alice, world.web, "Long one")
    # Longer than a description may be: many comments' worth, written straight in.
    await session.execute(update(Issue).where(Issue.id == issue.id).values(description=long))
    await search.refresh_search_document(session, issue.id)
    await session.commit()
    assert await found(session, world.alice, "zebrafinch") == ["Long one"]
    cut = session.get_bind().dialect.name == "postgresql"
    assert await found(session, world.alice, "lastword") == ([] if cut else ["Long one"])
    short = await new_issue(session, world.alice, world.web, "Short one")
    await comments.add_comment(session, world.alice, short.id, "a quokka in the logs")
    assert await found(session, world.alice, "quokka") == ["Short one"]


async def test_refreshing_a_missing_issue_writes_nothing(session: AsyncSession) -> None:
    await search.refresh_search_document(session, 12345)
    await session.commit()
    assert await session.scalar(select(func.count()).select_from(IssueSearch)) == 0


# --- Free words -------------------------------------------------------------------------------


async def test_free_words_match_title_description_and_live_comments(
    session: AsyncSession, world: World
) -> None:
    await new_issue(session, world.alice, world.web, "Login is slow")
    await new_issue(
        session, world.alice, world.web, "Page header", description="The logo is blurry"
    )
    commented = await new_issue(session, world.alice, world.web, "Footer")
    await comments.add_comment(session, world.alice, commented.id, "Seen on Safari too")
    await search.refresh_search_document(session, commented.id)
    await session.commit()
    gone = await new_issue(session, world.alice, world.web, "Sidebar")
    deleted = await comments.add_comment(session, world.alice, gone.id, "Crashes on Safari")
    await comments.delete_comment(session, world.alice, deleted.id)
    await search.refresh_search_document(session, gone.id)
    await session.commit()

    assert await found(session, world.alice, "slow") == ["Login is slow"]
    assert await found(session, world.alice, "BLURRY") == ["Page header"]
    assert await found(session, world.alice, "safari") == ["Footer"]
    assert await found(session, world.alice, "crashes") == []


async def test_words_match_by_prefix_and_stem_and_all_must_match(
    session: AsyncSession, world: World
) -> None:
    await new_issue(session, world.alice, world.web, "Login is running slowly")
    await new_issue(session, world.alice, world.web, "Logout button")

    assert await found(session, world.alice, "log") == ["Login is running slowly", "Logout button"]
    assert await found(session, world.alice, "runs") == ["Login is running slowly"]
    assert await found(session, world.alice, "log button") == ["Logout button"]
    assert await found(session, world.alice, "log -button") == ["Login is running slowly"]
    assert await found(session, world.alice, "nothing") == []


async def test_words_shorter_than_three_letters_match_only_whole_words(
    session: AsyncSession, world: World
) -> None:
    await new_issue(session, world.alice, world.web, "Login")
    await new_issue(session, world.alice, world.web, "Lo-fi mode")

    assert await found(session, world.alice, "lo") == ["Lo-fi mode"]
    assert await found(session, world.alice, "l") == []
    assert await found(session, world.alice, "log") == ["Login"]


async def test_a_phrase_matches_its_words_in_order(session: AsyncSession, world: World) -> None:
    await new_issue(session, world.alice, world.web, "Search page is empty")
    await new_issue(session, world.alice, world.web, "Empty page after search")

    assert await found(session, world.alice, '"search page"') == ["Search page is empty"]
    assert await found(session, world.alice, '"page search"') == []
    assert await found(session, world.alice, '-"search page" empty') == ["Empty page after search"]


async def test_punctuation_and_full_text_operators_are_only_separators(
    session: AsyncSession, world: World
) -> None:
    await new_issue(session, world.alice, world.web, "Cannot log in (OAuth)")

    for query in ["oauth)", "'oauth'", '"oauth:*"', "!oauth & log", "oauth NEAR log", 'x" OR y']:
        assert await found(session, world.alice, query) in ([], ["Cannot log in (OAuth)"])
    assert await found(session, world.alice, "(oauth)") == ["Cannot log in (OAuth)"]


# --- Qualifiers -------------------------------------------------------------------------------


@pytest.fixture
async def tracker(session: AsyncSession, world: World) -> World:
    """Issues with every field varied, in WEB."""
    alice, bob, web = world.alice, world.bob, world.web
    day = datetime(2026, 3, 10, 12, tzinfo=UTC)
    await new_issue(
        session,
        alice,
        web,
        "Crash on save",
        type="bug",
        priority="urgent",
        assignee=alice,
        labels=("bug", "ui"),
        created=day - timedelta(days=20),
        updated=day,
    )
    await new_issue(
        session,
        bob,
        web,
        "Add dark mode",
        type="feature",
        priority="low",
        status="In review",
        assignee=bob,
        labels=("ui",),
        created=day - timedelta(days=10),
        updated=day + timedelta(days=1),
    )
    await new_issue(
        session,
        alice,
        web,
        "Old cleanup",
        status="Done",
        labels=("wontfix",),
        created=day - timedelta(days=30),
        updated=day - timedelta(days=5),
        due_date=date(2026, 4, 1),
    )
    return world


@pytest.mark.parametrize(
    ("query", "titles"),
    [
        ("is:open", ["Add dark mode", "Crash on save"]),
        ("is:closed", ["Old cleanup"]),
        ("-is:open", ["Old cleanup"]),
        ('status:"In review"', ["Add dark mode"]),
        ('status:"in REVIEW"', ["Add dark mode"]),
        ("status:Backlog", ["Crash on save"]),
        ("-status:Backlog", ["Add dark mode", "Old cleanup"]),
        ("status:Nowhere", []),
        ("assignee:me", ["Crash on save"]),
        ("-assignee:me", ["Add dark mode", "Old cleanup"]),
        ("assignee:none", ["Old cleanup"]),
        ("-assignee:none", ["Add dark mode", "Crash on save"]),
        ("assignee:bob@example.com", ["Add dark mode"]),
        ("assignee:nobody-here", []),
        ("-assignee:nobody-here", ["Add dark mode", "Crash on save", "Old cleanup"]),
        ("reporter:bob@example.com", ["Add dark mode"]),
        ("reporter:me", ["Crash on save", "Old cleanup"]),
        ("reporter:none", []),
        ("label:ui", ["Add dark mode", "Crash on save"]),
        ("label:UI label:bug", ["Crash on save"]),
        ("label:ui -label:bug", ["Add dark mode"]),
        ("-label:wontfix", ["Add dark mode", "Crash on save"]),
        ("label:nonesuch", []),
        ("label:%", []),
        ("label:u_", []),
        ("label:\\", []),
        ("status:Back%", []),
        ("priority:urgent", ["Crash on save"]),
        ("-priority:urgent", ["Add dark mode", "Old cleanup"]),
        ("priority:high", []),
        ("type:feature", ["Add dark mode"]),
        ("type:bug is:open", ["Crash on save"]),
        ("project:web", ["Add dark mode", "Crash on save", "Old cleanup"]),
        ("-project:WEB", []),
        ("project:NOPE", []),
        ("created:2026-02-28", ["Add dark mode"]),
        ("created:>2026-02-18", ["Add dark mode"]),
        ("created:>=2026-02-18", ["Add dark mode", "Crash on save"]),
        ("created:<2026-02-18", ["Old cleanup"]),
        ("created:<=2026-02-18", ["Crash on save", "Old cleanup"]),
        ("-created:2026-02-18", ["Add dark mode", "Old cleanup"]),
        ("updated:>=2026-03-10", ["Add dark mode", "Crash on save"]),
        ("updated:2026-03-11", ["Add dark mode"]),
        ("updated:<2026-03-06", ["Old cleanup"]),
        ("created:>9999-12-31", []),
        ("created:<=9999-12-31", ["Add dark mode", "Crash on save", "Old cleanup"]),
        ("created:9999-12-31", []),
        ("created:<0001-01-01", []),
        ("is:open label:ui assignee:me crash", ["Crash on save"]),
    ],
)
async def test_each_qualifier_filters_as_written(
    session: AsyncSession, tracker: World, query: str, titles: list[str]
) -> None:
    assert await found(session, tracker.alice, query) == titles
    assert await search.count_issues(session, tracker.alice, query) == len(titles)


async def test_assignee_by_handle(session: AsyncSession, tracker: World) -> None:
    handle = tracker.bob.handle
    assert await found(session, tracker.alice, f"assignee:{handle}") == ["Add dark mode"]
    assert await found(session, tracker.alice, f"assignee:@{handle.upper()}") == ["Add dark mode"]


async def test_me_means_whoever_is_looking(session: AsyncSession, tracker: World) -> None:
    assert await found(session, tracker.bob, "assignee:me") == ["Add dark mode"]
    assert await found(session, tracker.bob, "reporter:me") == ["Add dark mode"]


async def test_a_project_narrows_the_search(session: AsyncSession, tracker: World) -> None:
    await new_issue(session, tracker.alice, tracker.pub, "Public crash")
    assert await found(session, tracker.alice, "crash") == ["Crash on save", "Public crash"]
    assert await found(session, tracker.alice, "crash", project=tracker.pub) == ["Public crash"]
    assert await search.count_issues(session, tracker.alice, "", project=tracker.web) == 3


async def test_a_capped_count_stops_just_past_its_cap(
    session: AsyncSession, tracker: World
) -> None:
    assert await search.count_issues(session, tracker.alice, "", project=tracker.web) == 3
    assert await search.count_issues(session, tracker.alice, "", project=tracker.web, up_to=5) == 3
    # Past the cap it says "more than 2", without reading every match.
    assert await search.count_issues(session, tracker.alice, "", project=tracker.web, up_to=2) == 3
    assert await search.count_issues(session, tracker.alice, "", project=tracker.web, up_to=1) == 2


# --- Who sees what ----------------------------------------------------------------------------


async def test_private_issues_never_reach_outsiders(session: AsyncSession, world: World) -> None:
    await new_issue(session, world.carol, world.sec, "Secret launch plan", labels=("bug",))
    await new_issue(session, world.alice, world.pub, "Public roadmap")
    await new_issue(session, world.alice, world.web, "Website launch")
    dave = await make_user(session)

    for query in ["", "launch", "secret", "project:SEC", "label:bug", "is:open", "sort:number-asc"]:
        seen_by_bob = await found(session, world.bob, query)
        seen_by_dave = await found(session, dave, query)
        assert "Secret launch plan" not in seen_by_bob + seen_by_dave, query
        assert await search.count_issues(session, dave, "project:SEC") == 0
        assert await found(session, dave, query, project=world.sec) == []
    assert await found(session, world.bob, "launch") == ["Website launch"]
    assert await found(session, dave, "") == ["Public roadmap"]
    assert await found(session, dave, "project:WEB") == []
    assert await found(session, world.carol, "project:SEC") == ["Secret launch plan"]
    assert await search.count_issues(session, world.carol, "") == 2
    assert await search.count_issues(session, dave, "") == 1


async def test_an_anonymous_viewer_sees_public_projects_only(
    session: AsyncSession, world: World
) -> None:
    await new_issue(session, world.alice, world.pub, "Public roadmap")
    page = await search.search_issues(session, None, "")
    assert [issue.title for issue in page.issues] == ["Public roadmap"]
    assert await search.count_issues(session, None, "roadmap") == 1
    assert await search.count_issues(session, None, "assignee:me") == 0
    # People by handle, never by address: that would say which address has an account.
    alice = world.alice
    assert await search.count_issues(session, None, f"reporter:{alice.handle}") == 1
    assert await search.count_issues(session, None, f"reporter:{alice.email}") == 0
    assert await search.count_issues(session, world.bob, f"reporter:{alice.email}") == 1
    with pytest.raises(QueryError):
        await search.search_issues(session, None, "colour:red")


# --- Order and pages --------------------------------------------------------------------------

PRIORITY_ORDER = ["none", "low", "medium", "high", "urgent"]


def sort_key(sort: str) -> Callable[[Issue], tuple[Any, int]]:
    """What the search should order by, computed in Python from the loaded issues."""
    field = sort.split("-")[0]
    values: dict[str, Callable[[Issue], Any]] = {
        "updated": lambda issue: issue.updated_at,
        "created": lambda issue: issue.created_at,
        "priority": lambda issue: PRIORITY_ORDER.index(issue.priority),
        "number": lambda issue: issue.number,
        "milestone": lambda issue: date.max,  # none has one: ties, in id order
    }
    return lambda issue: (values[field](issue), issue.id)


async def walk(
    session: AsyncSession, viewer: User, query: str, *, limit: int, project: Project | None = None
) -> list[list[int]]:
    pages, after = [], None
    while True:
        page = await search.search_issues(
            session, viewer, query, after=after, limit=limit, project=project
        )
        pages.append([issue.id for issue in page.issues])
        if page.next_cursor is None:
            return pages
        after = page.next_cursor
        assert len(pages) < 50


@pytest.fixture
async def many(session: AsyncSession, world: World) -> list[Issue]:
    """Thirteen issues over two projects with many ties in every sort key."""
    moments = [datetime(2026, 1, 1, 9, tzinfo=UTC), datetime(2026, 1, 1, 9, 0, 0, 1, tzinfo=UTC)]
    made = []
    for n in range(13):
        project = world.web if n % 2 else world.pub
        made.append(
            await new_issue(
                session,
                world.alice,
                project,
                f"Issue {n}",
                priority=PRIORITY_ORDER[n % 3],
                created=moments[n % 2],
                updated=moments[(n // 3) % 2],
            )
        )
    return list(
        await session.scalars(select(Issue).where(Issue.id.in_([issue.id for issue in made])))
    )


@pytest.mark.parametrize("sort", SORTS)
async def test_pages_continue_exactly_where_the_last_one_stopped(
    session: AsyncSession, world: World, many: list[Issue], sort: str
) -> None:
    expected = [issue.id for issue in sorted(many, key=sort_key(sort))]
    if sort.endswith("desc"):
        expected.reverse()
    pages = await walk(session, world.alice, f"sort:{sort}", limit=3)
    assert [len(page) for page in pages] == [3, 3, 3, 3, 1]
    assert [issue_id for page in pages for issue_id in page] == expected


async def test_the_last_full_page_has_no_next_cursor(
    session: AsyncSession, world: World, many: list[Issue]
) -> None:
    pages = await walk(session, world.alice, "", limit=13)
    assert [len(page) for page in pages] == [13]
    pages = await walk(session, world.alice, "project:WEB", limit=2)
    assert [len(page) for page in pages] == [2, 2, 2]


async def test_a_page_has_its_issues_details_loaded(session: AsyncSession, tracker: World) -> None:
    page = await search.search_issues(session, tracker.alice, "label:bug")
    [issue] = page.issues
    assert issue.key == "WEB-1"
    assert (issue.status.name, issue.assignee.handle, issue.reporter.id) == (
        "Backlog",
        tracker.alice.handle,
        tracker.alice.id,
    )
    assert sorted(label.name for label in issue.labels) == ["bug", "ui"]
    assert page.query == search.parse_query("label:bug")


def forge(*fields: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(fields)).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!",
        "a" * 500,
        "===",
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        forge("updated-desc"),
        forge("updated-desc", "2026-01-01T00:00:00+00:00"),
        forge("created-desc", "2026-01-01T00:00:00+00:00", 1),
        forge("updated-desc", "2026-01-01T00:00:00", 1),
        forge("updated-desc", "yesterday", 1),
        forge("updated-desc", 5, 1),
        forge("updated-desc", "0001-01-01T00:00:00+05:00", 1),
        forge("updated-desc", "9999-12-31T23:59:59-05:00", 1),
        forge("updated-desc", "2026-01-01T00:00:00+00:00", 2**40),
        forge("updated-desc", "2026-01-01T00:00:00+00:00", True),
        forge("updated-desc", "2026-01-01T00:00:00+00:00", "1"),
        forge("updated-desc", "2026-01-01T00:00:00+00:00", 1.5),
        {"a": 1},
        base64.urlsafe_b64encode(b'{"a": 1}').decode().rstrip("="),
        base64.urlsafe_b64encode(b"1e999").decode().rstrip("="),
    ],
)
async def test_a_forged_or_garbled_cursor_is_invalid(
    session: AsyncSession, world: World, cursor: Any
) -> None:
    cursor = cursor if isinstance(cursor, str) else forge(cursor)
    with pytest.raises(Invalid) as refusal:
        await search.search_issues(session, world.alice, "", after=cursor)
    assert refusal.value.field == "after"


@pytest.mark.parametrize(
    ("cursor", "count"),
    [
        (forge("priority-desc", 99, 1), 13),
        (forge("number-desc", -(2**31), 2**31 - 1), 0),
        (forge("number-asc", -(2**31), 2**31 - 1), 13),
        (forge("updated-asc", "9999-12-31T23:59:59.999999+00:00", 1), 0),
        (forge("created-desc", "0001-01-01T00:00:00+00:00", 1), 0),
    ],
)
async def test_a_well_formed_cursor_at_the_extremes_is_a_page_not_an_error(
    session: AsyncSession, world: World, many: list[Issue], cursor: str, count: int
) -> None:
    sort = json.loads(base64.urlsafe_b64decode(cursor + "==="))[0]
    page = await search.search_issues(session, world.alice, f"sort:{sort}", after=cursor)
    assert len(page.issues) == count


# --- CSV --------------------------------------------------------------------------------------


async def test_csv_export_walks_every_page_and_defuses_formulas(
    session: AsyncSession, tracker: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    await new_issue(session, tracker.alice, tracker.web, '=HYPERLINK("http://evil")')
    await new_issue(session, tracker.alice, tracker.web, "+1 on this", labels=("-x", "@y"))
    monkeypatch.setattr(finder, "PAGE_MAX", 2)

    text = await search.export_csv(session, tracker.alice, "sort:number-asc")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == list(search.EXPORT_COLUMNS)
    assert [row[0] for row in rows[1:]] == ["WEB-1", "WEB-2", "WEB-3", "WEB-4", "WEB-5"]
    assert rows[1] == [
        "WEB-1",
        "Crash on save",
        "Backlog",
        "urgent",
        "bug",
        tracker.alice.handle,
        tracker.alice.handle,
        "bug, ui",
        "2026-02-18T12:00:00Z",
        "2026-03-10T12:00:00Z",
        "",
    ]
    assert rows[3][2] == "Done" and rows[3][-1] == "2026-04-01" and rows[3][5] == ""
    assert rows[4][1] == '\'=HYPERLINK("http://evil")'
    assert rows[5][1] == "'+1 on this" and rows[5][7] == "'-x, @y"


async def test_csv_export_sees_what_search_sees(session: AsyncSession, world: World) -> None:
    await new_issue(session, world.carol, world.sec, "Secret launch plan")
    text = await search.export_csv(session, world.alice, "")
    assert text.splitlines() == [",".join(search.EXPORT_COLUMNS)]
    assert await search.export_csv(session, None, "launch") == text


# --- Saved searches ---------------------------------------------------------------------------


async def test_saved_searches_are_kept_per_user_by_name(
    session: AsyncSession, world: World
) -> None:
    mine = await search.save_search(
        session, world.alice, name=" Open bugs ", query=" is:open label:bug "
    )
    await search.save_search(session, world.alice, name="assigned", query="assignee:me")
    await search.save_search(session, world.bob, name="Bob's", query="reporter:me")

    assert (mine.name, mine.query, mine.user_id) == (
        "Open bugs",
        "is:open label:bug",
        world.alice.id,
    )
    listed = await search.list_saved_searches(session, world.alice)
    assert [saved.name for saved in listed] == ["assigned", "Open bugs"]

    await search.delete_saved_search(session, world.alice, mine.id)
    assert [saved.name for saved in await search.list_saved_searches(session, world.alice)] == [
        "assigned"
    ]


@pytest.mark.parametrize(
    ("name", "query", "field"),
    [
        ("  ", "is:open", "name"),
        ("x" * 81, "is:open", "name"),
        ("Bugs", "colour:red", "q"),
        ("Bugs", "   ", "q"),
        ("taken", "is:open", "name"),
        ("TAKEN", "is:open", "name"),
    ],
)
async def test_a_bad_saved_search_is_refused_and_nothing_is_written(
    session: AsyncSession, world: World, name: str, query: str, field: str
) -> None:
    await search.save_search(session, world.alice, name="taken", query="is:closed")
    with pytest.raises(Invalid) as refusal:
        await search.save_search(session, world.alice, name=name, query=query)
    assert refusal.value.field == field
    assert await session.scalar(select(func.count()).select_from(SavedSearch)) == 1


async def test_an_unconfirmed_account_cannot_save_a_search(session: AsyncSession) -> None:
    newcomer = await make_user(session, validated=False)
    with pytest.raises(Forbidden):
        await search.save_search(session, newcomer, name="Mine", query="assignee:me")


async def test_another_users_saved_search_cannot_be_deleted(
    session: AsyncSession, world: World
) -> None:
    saved = await search.save_search(session, world.alice, name="Mine", query="assignee:me")
    for saved_search_id in (saved.id, saved.id + 1000, 2**40):
        with pytest.raises(NotFound):
            await search.delete_saved_search(session, world.bob, saved_search_id)
    assert len(await search.list_saved_searches(session, world.alice)) == 1


# --- Whatever is typed ------------------------------------------------------------------------


@pytest.fixture
async def run_in_loop() -> Callable[[Coroutine[Any, Any, Any]], Any]:
    """Runs a coroutine on the tests' event loop from a synchronous test. Hypothesis cannot
    decorate a coroutine, so the property below is a plain function that drives the session
    through this; the loop is idle while a synchronous test runs, and Hypothesis keeps its
    shrinking and its failure report."""
    return asyncio.get_running_loop().run_until_complete


@pytest.fixture
async def viewer(session: AsyncSession, tracker: World) -> User:
    """Alice, detached like the request's user, so that a rollback cannot expire her."""
    alice = await session.get_one(User, tracker.alice.id)
    session.expunge(alice)
    return alice


# Mostly well-formed terms with odd values, so that most examples reach the database; the
# parser's own strategy adds the malformed rest (control characters are refused before any SQL).
PRINTABLE = st.text(st.characters(exclude_categories=("Cc", "Cs")), max_size=12)
VALUES = st.one_of(
    st.sampled_from(["open", "me", "none", "bug", "high", "WEB", "SEC", "In review", "alice"]),
    st.sampled_from([">2026-01-01", "<=9999-12-31", "0001-01-01", ">=2026-03-10"]),
    PRINTABLE.map(lambda value: value.replace('"', "")),
)
QUALIFIED = st.builds(
    lambda negated, name, value: f'{"-" if negated else ""}{name}:"{value}"',
    st.booleans(),
    st.sampled_from([name for name in search.QUALIFIERS if name != "sort"]),
    VALUES,
)
PHRASES = PRINTABLE.map(lambda phrase: '"' + phrase.replace('"', "") + '"')
DB_QUERIES = st.one_of(
    st.builds(
        "{} sort:{}".format,
        st.lists(st.one_of(QUALIFIED, QUALIFIED, PHRASES, PRINTABLE), max_size=6).map(" ".join),
        st.sampled_from(SORTS),
    ),
    st.lists(st.one_of(QUALIFIED, QUALIFIED, PHRASES, PRINTABLE), max_size=6).map(" ".join),
    QUERIES,
)
CURSORS = st.one_of(
    st.none(),
    st.text(max_size=30),
    st.builds(forge, st.sampled_from(SORTS), st.integers() | st.text(max_size=30), st.integers()),
)


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=DB_QUERIES, after=CURSORS)
def test_no_query_or_cursor_raises_anything_but_invalid(
    session: AsyncSession,
    viewer: User,
    run_in_loop: Callable[[Coroutine[Any, Any, Any]], Any],
    text: str,
    after: str | None,
) -> None:
    async def attempt() -> None:
        try:
            page = await search.search_issues(session, viewer, text, limit=2)
            event("parsed")
            assert await search.count_issues(session, viewer, page.query) >= len(page.issues)
            await search.search_issues(session, viewer, page.query, after=after, limit=2)
            event("cursor accepted")
        except QueryError as refusal:
            assert refusal.field == "q"
        except Invalid as refusal:
            assert refusal.field == "after"
        finally:
            await session.rollback()

    run_in_loop(attempt())
