"""Pages hold their shape with hostile data (long unbroken words, 200-character titles, many
labels, right-to-left text, emoji) at phone, laptop and wide sizes, in light and dark: no card is
wider than its column, nothing runs past the viewport, and the board keeps its own scroll area."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Page, expect
from sqlalchemy import select

from app.models import Role, User
from app.services import comments, issues, projects, search
from tests.e2e.conftest import LiveServer, screenshot_path
from tests.e2e.test_tracker import log_in, make_account, watch_for_problems

pytestmark = pytest.mark.browser

SIZES = {
    "phone": {"width": 390, "height": 844},
    "laptop": {"width": 1366, "height": 768},
    "wide": {"width": 1920, "height": 1080},
}

LONG_URL = "https://example.com/" + "/".join(["a-very-long-path-segment"] * 6) + "?token=" + "x" * 8
BASE64 = ("TG9uZyB1bmJyb2tlbiBiYXNlNjQgYmxvYnMgYnJlYWsgYm9hcmRz" * 4)[:200]
SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
WORDS = (
    "When the checkout page is opened from the saved basket link in the reminder email the "
    "total is recomputed twice and the second request times out behind the proxy so we lose"
)[:200]
RTL = "خطأ في تسجيل الدخول عند استخدام كلمة مرور طويلة جدا · שגיאה בהתחברות עם סיסמה ארוכה"
EMOJI = "🔥🚀" + "👨‍👩‍👧‍👦" * 20 + " 🇩🇪🇯🇵🏳️‍🌈 done ✅"
HOSTILE_TITLES = [LONG_URL, BASE64, WORDS, RTL, EMOJI, SHA * 3]
LABELS = [
    "bug",
    "needs-triage",
    "🔥 hot",
    "بحاجة إلى مراجعة",
    "extraordinarily-long-label-name-without-any-spaces",
    "frontend",
    "backend",
    "performance",
    "accessibility",
    "security",
    "good-first-issue",
    "wontfix",
    "🦄🦄🦄🦄🦄🦄🦄🦄🦄🦄",
    "documentation",
]
DESCRIPTION = f"""Seen with {LONG_URL} and the blob {BASE64}.

```
curl -H 'Authorization: Bearer {BASE64}' {LONG_URL}
```

{RTL}

{EMOJI}
"""

# Everything the page shows: nothing may end past the viewport's sides, unless it sits in a box
# that scrolls (reachable) or clips it with an ellipsis (meant). Text is measured by its own
# line boxes, which overflow without widening their element.
PAGE_OVERFLOW = r"""() => {
  const width = document.documentElement.clientWidth;
  const problems = [];
  const scroller = document.documentElement;
  if (scroller.scrollWidth > width + 1) {
    problems.push(`the page scrolls sideways: ${scroller.scrollWidth} px in ${width}`);
  }
  const describe = (node) => {
    const el = node.nodeType === Node.TEXT_NODE ? node.parentElement : node;
    const classes = [...el.classList].map((name) => "." + name).join("");
    const text = (node.textContent || "").trim().replace(/\s+/g, " ").slice(0, 30);
    return `${el.tagName.toLowerCase()}${el.id ? "#" + el.id : ""}${classes} "${text}"`;
  };
  const bounds = (from) => {
    let left = 0, right = width;
    for (let box = from; box && box !== document.body; box = box.parentElement) {
      const style = getComputedStyle(box);
      if (style.overflowX === "visible") continue;
      if (["auto", "scroll"].includes(style.overflowX)) return null;
      if (style.textOverflow === "ellipsis") return null;
      const rect = box.getBoundingClientRect();
      left = Math.max(left, rect.left);
      right = Math.min(right, rect.right);
    }
    return { left, right };
  };
  const walker = document.createTreeWalker(
    document.body, NodeFilter.SHOW_ELEMENT | NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.nodeType === Node.TEXT_NODE;
    const el = text ? node.parentElement : node;
    if (text && !node.textContent.trim()) continue;
    if (!el.checkVisibility() || el.closest(".visually-hidden, .skip-link")) continue;
    const limit = bounds(text ? el : el.parentElement);
    if (!limit) continue;
    let rects = [el.getBoundingClientRect()];
    if (text) {
      const range = document.createRange();
      range.selectNodeContents(node);
      rects = [...range.getClientRects()];
    }
    for (const rect of rects) {
      if (rect.width === 0) continue;
      if (rect.right > limit.right + 1 || rect.left < limit.left - 1) {
        problems.push(`${describe(node)} spans ${Math.round(rect.left)}..${Math.round(rect.right)}`
                      + ` beyond ${Math.round(limit.left)}..${Math.round(limit.right)}`);
        break;
      }
    }
  }
  return problems;
}"""

# Each card on the board: no wider than its column, and all it holds inside it.
CARD_OVERFLOW = r"""() => {
  const problems = [];
  for (const card of document.querySelectorAll("#board .board-card")) {
    if (!card.checkVisibility()) continue;
    const key = card.dataset.key;
    const list = card.closest(".column-cards");
    const box = card.getBoundingClientRect();
    if (box.width > list.clientWidth + 1) {
      const wide = Math.round(box.width);
      problems.push(`${key} is ${wide} px wide in a ${list.clientWidth} px column`);
    }
    if (card.scrollWidth > card.clientWidth + 1) {
      problems.push(`${key} holds ${card.scrollWidth} px of content in ${card.clientWidth} px`);
    }
    const walker = document.createTreeWalker(card, NodeFilter.SHOW_ELEMENT | NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const text = node.nodeType === Node.TEXT_NODE;
      const el = text ? node.parentElement : node;
      if ((text && !node.textContent.trim()) || !el.checkVisibility()) continue;
      if (el.closest(".card-menu")) continue;
      let rects = [el.getBoundingClientRect()];
      if (text) {
        const range = document.createRange();
        range.selectNodeContents(node);
        rects = [...range.getClientRects()];
      }
      const clipped = (from) => {
        for (let up = from; up && up !== card; up = up.parentElement) {
          if (getComputedStyle(up).overflowX !== "visible") return true;
        }
        return false;
      };
      if (clipped(text ? el : el.parentElement)) continue;
      if (rects.some((r) => r.width && (r.left < box.left - 1 || r.right > box.right + 1))) {
        problems.push(`${key}: "${(node.textContent || "").trim().slice(0, 30)}" runs out of it`);
        break;
      }
    }
  }
  return problems;
}"""

# The board: its own scroll area, its columns' heads in view when scrolled down. The area ends
# within the viewport, or where what is above it leaves too little room (a phone), it is no taller
# than the viewport, so scrolling the page to it shows all of it.
BOARD_SHAPE = r"""(roomy) => {
  const board = document.getElementById("board");
  const problems = [];
  const area = board.getBoundingClientRect();
  const style = getComputedStyle(board);
  if (style.overflowY === "visible") problems.push("the board has no scroll area of its own");
  if (roomy && area.bottom > window.innerHeight + 1) {
    problems.push(`the board ends at ${Math.round(area.bottom)} px, below the viewport`);
  }
  if (area.height > window.innerHeight) {
    problems.push(`the board is ${Math.round(area.height)} px high, more than the viewport`);
  }
  if (board.scrollHeight <= board.clientHeight) {
    problems.push("the board's cards fit without scrolling: the data set is too small to tell");
  }
  board.scrollTop = board.scrollHeight;
  const heads = [...board.querySelectorAll(".column-head")].filter((head) => {
    const rect = head.getBoundingClientRect();
    return rect.right > area.left && rect.left < area.right;
  });
  for (const head of heads) {
    const rect = head.getBoundingClientRect();
    if (rect.top < area.top - 1 || rect.bottom > area.bottom + 1) {
      problems.push(`the head of ${head.dataset.columnName} scrolled out of view`);
    }
  }
  if (!heads.length) problems.push("no column head in view");
  board.scrollTop = 0;
  return {
    problems,
    fits: board.scrollWidth <= board.clientWidth + 1,
    columns: [...board.querySelectorAll(".board-column")].map(
      (column) => column.getBoundingClientRect().width),
    width: board.clientWidth,
  };
}"""


async def hostile_project(server: LiveServer) -> None:
    """Project HOST: Ann owns it, Bob (a long right-to-left and emoji name) is a member; every
    column has cards, Backlog enough to scroll, with hostile titles, labels and comments."""
    await make_account(server, "ann@example.com", "Ann Example")
    await make_account(
        server,
        "bob@example.com",
        "بارثولوميو Wolfeschlegelsteinhausenbergerdorffwelchevoralternwaren 🦄",
    )
    async with server.app.extensions["database"].sessionmaker() as session:
        ann = await session.scalar(select(User).where(User.email == "ann@example.com"))
        bob = await session.scalar(select(User).where(User.email == "bob@example.com"))
        session.expunge_all()
        project = await projects.create_project(
            session, ann, key="HOST", name="Hostile " + "Unbrokenprojectname" * 4
        )
        await projects.add_member(session, ann, project.id, email=bob.email, role=Role.MEMBER.value)
        label_ids = []
        for number, name in enumerate(LABELS):
            label = await projects.save_label(
                session, ann, project.id, name=name, color=f"#{(number * 1234567) % 0xFFFFFF:06x}"
            )
            label_ids.append(label.id)
        columns = await projects.workflow(session, project.id)
        first = await issues.create_issue(
            session,
            ann,
            project.id,
            title=LONG_URL,
            description=DESCRIPTION,
            priority="urgent",
            type="bug",
            assignee_id=bob.id,
            label_ids=label_ids,
        )
        for body in (f"Still failing: {BASE64}", RTL, EMOJI, f"See {LONG_URL}"):
            await comments.add_comment(session, bob, first.id, body)
        for number, title in enumerate(HOSTILE_TITLES[1:] * 2):
            await issues.create_issue(
                session,
                ann,
                project.id,
                title=title,
                status_id=columns[number % len(columns)].id,
                assignee_id=bob.id if number % 2 else None,
                label_ids=label_ids[number : number + 4],
                priority=["high", "medium", "low", "none"][number % 4],
            )
        for number in range(12):
            await issues.create_issue(session, ann, project.id, title=f"Filler card {number}")
        await search.save_search(
            session, ann, name="Saved " + "Unbrokensearchname" * 3, query="is:open"
        )


PAGES = {
    "board": "/p/HOST/board",
    "board-lanes": "/p/HOST/board?lanes=assignee",
    "issue": "/HOST-1",
    "list": "/p/HOST",
    "search": "/search?q=is%3Aopen",
    # The rest of the pages that show what people typed: checked the same way.
    "mine": "/issues?tab=reported",
    "projects": "/projects",
    "members": "/p/HOST/members",
    "settings": "/p/HOST/settings",
    "person": "/u/bob",
}


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("size", SIZES)
async def test_every_page_holds_its_shape_with_hostile_data(
    browser: Browser, live_server: LiveServer, backend: str, size: str, scheme: str
) -> None:
    await hostile_project(live_server)
    context = await browser.new_context(color_scheme=scheme, viewport=SIZES[size])
    page = await context.new_page()
    problems = watch_for_problems(page)
    await log_in(page, live_server, "ann@example.com")
    found: list[str] = []
    for name, path in PAGES.items():
        await page.goto(live_server.url + path)
        if name.startswith("board"):
            await expect(page.locator("#live[data-state='open']")).to_be_attached()
        found += [f"{name}: {problem}" for problem in await page.evaluate(PAGE_OVERFLOW)]
        if name.startswith("board"):
            found += [f"{name}: {problem}" for problem in await page.evaluate(CARD_OVERFLOW)]
            shape = await page.evaluate(BOARD_SHAPE, size != "phone")
            found += [f"{name}: {problem}" for problem in shape["problems"]]
            if name == "board" and size != "phone" and not shape["fits"]:
                found.append(f"board: columns {shape['columns']} do not fit in {shape['width']} px")
        await page.screenshot(
            path=screenshot_path(f"layout-{name}-{size}-{scheme}-{backend}"), full_page=True
        )
    background = await page.evaluate("getComputedStyle(document.body).backgroundColor")
    channels = [int(part) for part in background.strip("rgba()").split(",")[:3]]
    assert (sum(channels) / 3 < 128) == (scheme == "dark"), background
    assert found == [], "\n".join(found)
    assert problems == []


# The name of the one column the phone shows, or how many show if not one.
COLUMN_IN_VIEW = """() => {
  const board = document.getElementById("board").getBoundingClientRect();
  const shown = [...document.querySelectorAll("#board .board-column")].filter((column) => {
    const rect = column.getBoundingClientRect();
    return rect.right > board.left + 1 && rect.left < board.right - 1;
  });
  if (shown.length !== 1) return `${shown.length} columns in view`;
  return shown[0].querySelector(".column-head").dataset.columnName;
}"""


async def wait_for_column(page: Page, name: str) -> None:
    await page.wait_for_function(f"() => ({COLUMN_IN_VIEW})() === {name!r}", timeout=5000)


async def test_a_phone_shows_one_column_at_a_time_with_a_switch(
    browser: Browser, live_server: LiveServer
) -> None:
    await hostile_project(live_server)
    page = await (await browser.new_context(viewport=SIZES["phone"])).new_page()
    await log_in(page, live_server, "ann@example.com")
    await page.goto(live_server.url + "/p/HOST/board")
    switch = page.get_by_role("navigation", name="Columns")
    await expect(switch).to_be_visible()
    assert await page.evaluate(COLUMN_IN_VIEW) == "Backlog"
    await expect(switch.get_by_role("link", name="Backlog")).to_have_attribute(
        "aria-current", "true"
    )
    await switch.get_by_role("link", name="Done").click()
    await wait_for_column(page, "Done")
    await expect(switch.get_by_role("link", name="Done")).to_have_attribute("aria-current", "true")
    await expect(switch.get_by_role("link", name="Backlog")).not_to_have_attribute(
        "aria-current", "true"
    )
    # Not full_page: that capture loses the board's own scroll position.
    await page.screenshot(path=screenshot_path("layout-board-phone-switched"))
    # Swiping the board (scrolling it sideways) moves the switch along.
    await page.evaluate("document.getElementById('board').scrollLeft = 0")
    await expect(switch.get_by_role("link", name="Backlog")).to_have_attribute(
        "aria-current", "true"
    )
    # At a laptop's width every column shows and the switch is gone.
    await page.set_viewport_size(SIZES["laptop"])
    await expect(switch).to_be_hidden()


async def test_the_sidebar_folds_away_and_stays_folded(
    browser: Browser, live_server: LiveServer
) -> None:
    await hostile_project(live_server)
    page = await (await browser.new_context(viewport=SIZES["laptop"])).new_page()
    await log_in(page, live_server, "ann@example.com")
    await page.goto(live_server.url + "/p/HOST/board")
    sidebar = page.get_by_role("navigation", name="Projects")
    toggle = page.get_by_role("button", name="Sidebar")
    await expect(sidebar).to_be_visible()
    await expect(toggle).to_have_attribute("aria-expanded", "true")
    narrow = (await page.locator("#board").bounding_box())["width"]

    await toggle.click()
    await expect(sidebar).to_be_hidden()
    await expect(toggle).to_have_attribute("aria-expanded", "false")
    assert (await page.locator("#board").bounding_box())["width"] > narrow + 200
    for path in ("/p/HOST/board", "/HOST-1"):  # remembered, on every page
        await page.goto(live_server.url + path)
        await expect(sidebar).to_be_hidden()
        await expect(toggle).to_have_attribute("aria-expanded", "false")

    await toggle.click()
    await expect(sidebar).to_be_visible()
    await page.reload()
    await expect(sidebar).to_be_visible()
    await expect(toggle).to_have_attribute("aria-expanded", "true")

    # On a phone the sidebar is out of the way, and the same button shows it over the page.
    await page.set_viewport_size(SIZES["phone"])
    await expect(sidebar).to_be_hidden()
    await expect(toggle).to_have_attribute("aria-expanded", "false")
    await toggle.click()
    await expect(sidebar).to_be_visible()
    await expect(sidebar.get_by_role("link", name="HOST")).to_be_visible()
    await page.keyboard.press("Escape")
    await expect(sidebar).to_be_hidden()


async def test_who_else_is_here_reads_as_part_of_the_issue_page_header(
    browser: Browser, live_server: LiveServer
) -> None:
    await hostile_project(live_server)
    pages = []
    for email in ("ann@example.com", "bob@example.com"):
        page = await (await browser.new_context(viewport=SIZES["laptop"])).new_page()
        await log_in(page, live_server, email)
        await page.goto(live_server.url + "/HOST-1")
        await expect(page.locator("#live[data-state='open']")).to_be_attached()
        pages.append(page)
    ann = pages[0]
    presence = ann.locator("#presence")
    await expect(presence.locator("[data-viewer]")).to_have_count(1)
    shown = await presence.bounding_box()
    crumbs = await ann.locator(".breadcrumbs").bounding_box()
    title = await ann.locator(".issue-head h1").bounding_box()
    # On the breadcrumb's line, at its end, above the title: not floating over the page.
    assert (
        shown["y"] < crumbs["y"] + crumbs["height"] and crumbs["y"] < shown["y"] + shown["height"]
    )
    assert shown["x"] > crumbs["x"] + crumbs["width"]
    assert shown["y"] + shown["height"] <= title["y"] + 1
    await ann.screenshot(path=screenshot_path("layout-issue-presence"))
