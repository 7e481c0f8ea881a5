// Issues: the board. Cards move where the server says, for every open browser; a person moves
// them by dragging, with a card's menu, or with Shift+arrows. A column shows its first cards and
// loads more as its end comes into view (or its "More cards" link is followed).
"use strict";

(() => {
  const board = document.getElementById("board");
  if (!board) return;
  const withLanes = board.dataset.lanes === "assignee";
  const notice = (text) => (window.issuesNotice ? window.issuesNotice(text) : null);
  const paint = (element) => (window.issuesPaint ? window.issuesPaint(element) : null);

  // --- Where cards go -------------------------------------------------------------------------
  // Cards are in board order, (position, id), in every list; a column's loaded part is every
  // card up to its last one on screen: a card placed after it stays out until it is scrolled to.
  const placeOf = (card) => [Number(card.dataset.position), Number(card.dataset.issueId)];
  const isBefore = (a, b) => a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]);

  function laneOf(card) {
    if (!withLanes) return board;
    const handle = card.dataset.assignee || "";
    let lane = [...board.querySelectorAll(".lane")].find((one) => one.dataset.lane === handle);
    if (!lane) lane = newLane(handle, (card.querySelector(".card-avatar") || {}).title || handle);
    return lane;
  }

  function newLane(handle, name) {
    // Someone got their first card while we watched: a lane like the others, empty.
    const model = board.querySelector(".lane");
    const lane = model.cloneNode(true);
    lane.dataset.lane = handle;
    lane.setAttribute("aria-label", name);
    lane.querySelector(".lane-head").firstChild.textContent = `${name} `;
    lane.querySelectorAll(".column-cards").forEach((list) => list.replaceChildren());
    const unassigned = [...board.querySelectorAll(".lane")].find((one) => one.dataset.lane === "");
    board.insertBefore(lane, unassigned || null);
    makeSortable(lane);
    return lane;
  }

  function column(card) {
    return laneOf(card).querySelector(`.column-cards[data-status-id="${card.dataset.statusId}"]`);
  }

  // The link to a column's next cards; none when the column is shown whole.
  const moreOf = (statusId) => board.querySelector(`.column-more[data-more-for="${statusId}"]`);

  // The last card of a column on screen (null if none), in every lane.
  function lastLoaded(statusId) {
    let last = null;
    board.querySelectorAll(`.column-cards[data-status-id="${statusId}"] > .board-card`)
      .forEach((card) => { if (!last || isBefore(placeOf(last), placeOf(card))) last = card; });
    return last;
  }

  function inLoadedPart(statusId, place) {
    if (!moreOf(statusId)) return true;
    const last = lastLoaded(statusId);
    return last !== null && !isBefore(placeOf(last), place);
  }

  function insertInOrder(list, card) {
    const place = placeOf(card);
    const after = [...list.children].find((other) => isBefore(place, placeOf(other)));
    list.insertBefore(card, after || null);
  }

  // A card one may move: focusable, with its menu's button (made here: the server's cards are
  // the same for every reader, and a board has hundreds).
  function prepare(card) {
    if (board.dataset.writable !== "true") return;
    card.tabIndex = 0;
    if (card.querySelector("[data-card-menu]")) return;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "card-menu-button";
    button.dataset.cardMenu = "";
    button.setAttribute("aria-haspopup", "menu");
    button.setAttribute("aria-expanded", "false");
    button.setAttribute("aria-label", `Move ${card.dataset.key}`);
    button.textContent = "⋯";
    card.querySelector(".card-top").append(button);
  }

  // --- The filters the board was read with (the server's; the same rules for live cards) -----
  function matchesFilters(card) {
    const { filterText: text, filterType: type, filterAssignee: assignee,
            filterLabel: label, filterMilestone: milestone } = board.dataset;
    const title = card.querySelector(".card-title");
    const shown = `${card.dataset.key} ${title ? title.textContent : ""}`.toLowerCase();
    const labels = [...card.querySelectorAll(".label-chip")].map((chip) => chip.title.toLowerCase());
    return (!text || shown.includes(text))
      && (!type || card.dataset.type === type)
      && (!assignee || (card.dataset.assignee || "").toLowerCase().startsWith(assignee))
      && (!label || labels.includes(label))
      && (!milestone || (card.dataset.milestone || "none") === milestone);
  }

  // --- Counts: the server's whole counts, moved by live events ---------------------------------
  // A column's count is of all its cards under the filters, loaded or not. A card on screen
  // knows where it is counted (data-counted-in); a live event moves that count. For a card not
  // on screen the board cannot know where it was counted, so it asks the server for the counts,
  // which come with the event counter they were read at: events up to it are in them already,
  // and the changes of later ones are applied again on top.
  let countsSeq = Number(board.dataset.countsSeq || 0);
  let changes = []; // {seq, statusId, delta} of events after countsSeq

  function countOf(statusId) {
    return board.querySelector(`[data-count-for="${statusId}"]`);
  }

  function bump(statusId, delta, seq) {
    if (!statusId) return;
    const count = countOf(statusId);
    if (!count) return;
    count.textContent = Number(count.textContent) + delta;
    changes.push({ seq, statusId, delta });
  }

  function countIn(cards, statusId) {
    cards.forEach((card) => { card.dataset.countedIn = statusId || card.dataset.statusId; });
  }

  let countsAsked = null;
  let askAgain = false;
  function refreshCounts() {
    if (countsAsked) {
      askAgain = true;
      return;
    }
    countsAsked = (async () => {
      // Events come in bursts, to every open board: wait a moment, not all at the same one.
      await new Promise((done) => setTimeout(done, 100 + Math.random() * 400));
      do {
        askAgain = false;
        const response = await fetch(board.dataset.countsUrl, {
          headers: { Accept: "application/json" },
        }).catch(() => null);
        const answer = response && response.ok ? await response.json().catch(() => null) : null;
        if (answer && answer.counts) applyCounts(answer);
      } while (askAgain);
      countsAsked = null;
    })();
  }

  function applyCounts({ seq, counts }) {
    if (seq < countsSeq) return;
    changes = changes.filter((change) => change.seq > seq);
    board.querySelectorAll("[data-count-for]").forEach((count) => {
      const id = count.dataset.countFor;
      const later = changes.filter((change) => change.statusId === id)
        .reduce((sum, change) => sum + change.delta, 0);
      count.textContent = Number(counts[id] || 0) + later;
    });
    countsSeq = seq;
  }

  function recountLanes() {
    // A lane counts the cards it shows (a column's count is the whole column's).
    board.querySelectorAll(".lane").forEach((lane) => {
      lane.querySelector("[data-lane-count]").textContent =
        lane.querySelectorAll(".board-card").length;
    });
  }

  // --- Live events ----------------------------------------------------------------------------
  const seenVersions = new Map(); // issue id -> newest version an event showed
  let missed = null; // while the board is read again: the events that came meanwhile

  function placeCard(html, { seq, kind }) {
    const template = document.createElement("template");
    template.innerHTML = html.trim();
    const card = template.content.firstElementChild;
    const version = Number(card.dataset.version);
    seenVersions.set(card.id, Math.max(version, seenVersions.get(card.id) || 0));
    const existing = document.getElementById(card.id);
    const statusId = card.dataset.statusId;
    const counted = matchesFilters(card) ? statusId : "";
    // The count moves from where the card was counted to where it is now.
    if (existing || kind === "issue.created") {
      const from = existing ? existing.dataset.countedIn || "" : "";
      if (from !== counted && seq > countsSeq) {
        bump(from, -1, seq);
        bump(counted, 1, seq);
      }
      if (existing) existing.dataset.countedIn = counted;
    } else if (kind === "issue.updated" || kind === "issue.moved") {
      refreshCounts(); // a card not on screen: where was it counted?
    }
    if (!existing && !(kind === "issue.created" || kind === "issue.updated"
                       || kind === "issue.moved")) return; // a comment on a card not shown
    // Our own move is already on screen: an event for a version we show changes nothing
    // (unless that card sits in another column than its own, as a board read mid-change can).
    if (existing && Number(existing.dataset.version) >= version
        && existing.closest(".column-cards").dataset.statusId === existing.dataset.statusId) return;
    const hadFocus = existing && existing.contains(document.activeElement);
    if (existing) existing.remove();
    const more = moreOf(statusId);
    if (more && more.dataset.next === card.dataset.issueId) {
      // The first card after the loaded part moved: ask which one is first now.
      more.dataset.next = "";
      loadMore(more);
    }
    const target = column(card);
    // Filtered out, or beyond the loaded part (it shows when the column is scrolled to it).
    if (!target || !counted || !inLoadedPart(statusId, placeOf(card))) {
      recountLanes();
      return;
    }
    card.dataset.countedIn = counted;
    insertInOrder(target, card);
    prepare(card);
    if (hadFocus) card.focus();
    card.classList.add("flash-card");
    setTimeout(() => card.classList.remove("flash-card"), 1500);
    paint(card);
    recountLanes();
  }

  document.addEventListener("issues:live", (event) => {
    const { data, seq, kind } = event.detail;
    if (!data.card) return;
    if (kind.startsWith("subissue.") || kind.startsWith("relation.")) {
      refreshMarks(data.card); // another issue changed: this card's marks, not its place
      return;
    }
    if (missed) missed.push(event.detail);
    placeCard(data.card, { seq, kind });
  });

  // The blocked mark and the sub-issue progress, from a card an event about it brought.
  function refreshMarks(html) {
    const template = document.createElement("template");
    template.innerHTML = html.trim();
    const card = template.content.firstElementChild;
    const existing = card && document.getElementById(card.id);
    const meta = existing && existing.querySelector(".card-meta");
    const fresh = card && card.querySelector(".card-meta");
    if (!meta || !fresh) return;
    meta.replaceWith(fresh);
    if (window.issuesPaint) window.issuesPaint(existing);
  }

  // --- More cards -----------------------------------------------------------------------------
  async function loadMore(more) {
    if (more.dataset.loading) return;
    more.dataset.loading = "true";
    const statusId = more.dataset.moreFor;
    const link = more.querySelector("[data-more-cards]");
    const url = new URL(link.href, window.location.href);
    const last = lastLoaded(statusId);
    // With its version: a card moved since keeps its old place as the page's start.
    if (last) url.searchParams.set("after", [...placeOf(last), last.dataset.version].join(":"));
    else url.searchParams.delete("after");
    const response = await fetch(url, {
      headers: { "HX-Request": "true", Accept: "text/html" },
    }).catch(() => null);
    const template = document.createElement("template");
    template.innerHTML = response && response.ok ? await response.text() : "";
    const page = template.content.querySelector(`[data-page-of="${statusId}"]`);
    if (!page) { // refused, signed out (a login page), or offline: the link stays to try again
      delete more.dataset.loading;
      notice("More cards could not be loaded. Try again.");
      return;
    }
    if (!more.isConnected) return; // the board was read again meanwhile
    const hadFocus = more.contains(document.activeElement);
    let first = null;
    for (const card of [...page.querySelectorAll(".board-card")]) {
      // On screen already (an event brought it), or older than what an event said of it.
      if (document.getElementById(card.id)) continue;
      if ((seenVersions.get(card.id) || 0) > Number(card.dataset.version)) continue;
      const list = column(card);
      if (!list) continue;
      card.dataset.countedIn = statusId;
      insertInOrder(list, card);
      prepare(card);
      paint(card);
      first = first || card;
    }
    const next = template.content.querySelector(".column-more");
    if (next) {
      more.replaceWith(next);
      watchForMore(next);
    } else {
      more.remove();
    }
    recountLanes();
    if (hadFocus) {
      const focus = first || (next && next.querySelector("[data-more-cards]"));
      if (focus) focus.focus();
    }
  }

  // A column's end coming into view (within a screenful) loads its next cards.
  const seeing = "IntersectionObserver" in window ? new IntersectionObserver((entries) => {
    for (const entry of entries) {
      if (entry.isIntersecting) loadMore(entry.target);
    }
  }, { root: board, rootMargin: "400px" }) : null;
  function watchForMore(more) {
    if (seeing) seeing.observe(more);
  }
  function watchAllForMore() {
    if (seeing) seeing.disconnect();
    board.querySelectorAll(".column-more").forEach(watchForMore);
  }
  board.addEventListener("click", (event) => {
    const link = event.target.closest("[data-more-cards]");
    if (!link) return;
    event.preventDefault();
    loadMore(link.closest(".column-more"));
  });

  // --- Moving cards ---------------------------------------------------------------------------
  // The card a moved card goes above: its new neighbour below, or, at the end of a column's
  // loaded part, the first card not loaded (nothing: the bottom of a column shown whole).
  function beforeOf(card, below) {
    if (below) return below.dataset.issueId;
    const more = moreOf(card.closest(".column-cards").dataset.statusId);
    return more ? more.dataset.next || "" : "";
  }

  async function saveMove(card, below) {
    const target = card.closest(".column-cards");
    const body = new URLSearchParams({
      issue: card.dataset.issueId,
      status: target.dataset.statusId,
      version: card.dataset.version,
      before: beforeOf(card, below),
    });
    // Only while a column's first card after its loaded part is being asked for again: to the
    // column's bottom, which is not on screen.
    const toBottom = !body.get("before") && moreOf(target.dataset.statusId);
    recountLanes();
    const response = await fetch(board.dataset.moveUrl, {
      method: "POST",
      headers: { "X-CSRF-Token": board.dataset.csrf, Accept: "application/json" },
      body,
    }).catch(() => null);
    const answer = response ? await response.json().catch(() => ({})) : {};
    if (response && response.ok) {
      card.dataset.version = answer.version;
      card.dataset.statusId = answer.status_id;
      card.dataset.position = answer.position;
      if (toBottom) {
        card.remove();
        recountLanes();
        return;
      }
      // A column with no room left between two cards was renumbered: the positions this
      // board shows are old, so read it again.
      const list = card.closest(".column-cards");
      const above = card.previousElementSibling;
      const next = card.nextElementSibling;
      if (list && ((above && !isBefore(placeOf(above), placeOf(card)))
                   || (next && !isBefore(placeOf(card), placeOf(next))))) await reloadCards();
      return;
    }
    // Refused (someone moved or edited it first), or the network failed: put the board back
    // as the server has it, and say why.
    notice((answer.error && answer.error.message) || "The move was not saved. Try again.");
    await reloadCards();
  }

  async function reloadCards() {
    missed = [];
    const fresh = await fetch(window.location.href, { headers: { Accept: "text/html" } })
      .catch(() => null);
    const page = fresh && new DOMParser().parseFromString(await fresh.text(), "text/html");
    const freshBoard = page && page.getElementById("board");
    const meanwhile = missed;
    missed = null;
    if (!freshBoard) return;
    board.replaceChildren(...freshBoard.childNodes);
    for (const name of ["countsSeq", "countsUrl", "filterText", "filterType", "filterAssignee",
                        "filterLabel", "filterMilestone"]) board.dataset[name] = freshBoard.dataset[name];
    countsSeq = Number(board.dataset.countsSeq || 0);
    changes = [];
    const cards = board.querySelectorAll(".board-card");
    cards.forEach(prepare);
    countIn(cards);
    setUpDragging();
    watchAllForMore();
    paint(board);
    recountLanes();
    // What came while the board was read: applied again, by version (those it holds change
    // nothing).
    for (const event of meanwhile) placeCard(event.data.card, event);
  }

  // The lists a card can go to: its lane's (or the board's) columns, left to right.
  function listsBeside(card) {
    const scope = withLanes ? card.closest(".lane") : board;
    return [...scope.querySelectorAll(".column-cards")];
  }

  function columnName(list) {
    const head = board.querySelector(`.column-head[data-status-id="${list.dataset.statusId}"]`);
    return head ? head.dataset.columnName : "";
  }

  // Each way to move a card ends here: where it goes, then one save.
  function moveCard(card, how) {
    const here = card.closest(".column-cards");
    let below;
    if (how === "up") {
      if (!card.previousElementSibling) return;
      below = card.previousElementSibling;
      here.insertBefore(card, below);
    } else if (how === "down") {
      if (!card.nextElementSibling) return;
      below = card.nextElementSibling.nextElementSibling;
      here.insertBefore(card, below);
    } else {
      const target = how instanceof Element ? how : null;
      if (!target || target === here) return;
      below = null; // below the column's loaded cards, where it stays in view
      target.appendChild(card);
    }
    card.focus();
    saveMove(card, below);
  }

  // --- A card's menu: the keyboard's (and the mouse's) alternative to dragging -------------
  let openMenu = null;
  function closeMenu(restoreFocus) {
    if (!openMenu) return;
    const { menu, button } = openMenu;
    menu.remove();
    button.setAttribute("aria-expanded", "false");
    openMenu = null;
    if (restoreFocus) button.focus();
  }

  function showMenu(button) {
    closeMenu(false);
    const card = button.closest(".board-card");
    const here = card.closest(".column-cards");
    const menu = document.createElement("div");
    menu.className = "card-menu";
    menu.setAttribute("role", "menu");
    menu.setAttribute("aria-label", `Move ${card.dataset.key}`);
    const item = (label, how, disabled) => {
      const choice = document.createElement("button");
      choice.type = "button";
      choice.setAttribute("role", "menuitem");
      choice.textContent = label;
      choice.disabled = disabled;
      choice.addEventListener("click", () => {
        closeMenu(false);
        moveCard(card, how);
      });
      menu.append(choice);
    };
    item("Move up", "up", !card.previousElementSibling);
    item("Move down", "down", !card.nextElementSibling);
    for (const list of listsBeside(card)) {
      if (list !== here) item(`Move to ${columnName(list)}`, list, false);
    }
    card.append(menu);
    button.setAttribute("aria-expanded", "true");
    openMenu = { menu, button };
    const first = menu.querySelector("button:not([disabled])");
    if (first) first.focus();
  }

  // --- Dragging -------------------------------------------------------------------------------
  let sortables = [];
  function makeSortable(scope) {
    if (!window.Sortable || board.dataset.writable !== "true") return;
    scope.querySelectorAll(".column-cards").forEach((list) => {
      const lane = list.closest(".lane");
      sortables.push(window.Sortable.create(list, {
        // With swimlanes a card stays in its lane: moving it across would change the assignee.
        group: lane ? `lane-${lane.dataset.lane}` : "board",
        animation: 120,
        filter: ".card-menu, .card-menu-button",
        preventOnFilter: false,
        onEnd: (event) => {
          if (event.from === event.to && event.oldIndex === event.newIndex) return;
          saveMove(event.item, event.item.nextElementSibling);
        },
      }));
    });
  }
  function setUpDragging() {
    sortables.forEach((sortable) => sortable.destroy());
    sortables = [];
    makeSortable(board);
  }

  countIn(board.querySelectorAll(".board-card"));
  watchAllForMore();
  if (board.dataset.writable === "true") {
    board.querySelectorAll(".board-card").forEach(prepare);
    setUpDragging();
    board.addEventListener("click", (event) => {
      const button = event.target.closest("[data-card-menu]");
      if (!button) return;
      if (openMenu && openMenu.button === button) closeMenu(true);
      else showMenu(button);
    });
    document.addEventListener("click", (event) => {
      if (openMenu && !openMenu.menu.contains(event.target) && event.target !== openMenu.button) {
        closeMenu(false);
      }
    });
    board.addEventListener("keydown", (event) => {
      if (openMenu && openMenu.menu.contains(event.target)) {
        const items = [...openMenu.menu.querySelectorAll("button:not([disabled])")];
        const index = items.indexOf(event.target);
        if (event.key === "Escape") closeMenu(true);
        else if (event.key === "ArrowDown") items[(index + 1) % items.length].focus();
        else if (event.key === "ArrowUp") items[(index - 1 + items.length) % items.length].focus();
        else return;
        event.preventDefault();
        return;
      }
      const card = event.target.closest(".board-card");
      if (!card || !event.shiftKey || event.target !== card) return;
      const lists = listsBeside(card);
      const here = lists.indexOf(card.closest(".column-cards"));
      const moves = { ArrowUp: "up", ArrowDown: "down",
                      ArrowLeft: lists[here - 1], ArrowRight: lists[here + 1] };
      if (!(event.key in moves)) return;
      event.preventDefault();
      if (moves[event.key]) moveCard(card, moves[event.key]);
    });
  }

  // --- Filters: the board is read again under them, at the server -----------------------------
  const filters = document.querySelector("[data-board-filters]");
  if (filters) {
    const submit = filters.querySelector("[data-filter-submit]");
    if (submit) submit.hidden = true;
    let typing = null;
    const applyFilters = () => {
      const url = new URL(window.location.href);
      filters.querySelectorAll("[data-filter]").forEach((field) => {
        const value = field.value.trim();
        if (value) url.searchParams.set(field.name, value);
        else url.searchParams.delete(field.name);
      });
      if (url.href === window.location.href) return;
      window.history.replaceState(null, "", url);
      reloadCards();
    };
    filters.addEventListener("input", () => {
      clearTimeout(typing);
      typing = setTimeout(applyFilters, 250);
    });
    filters.addEventListener("submit", (event) => {
      event.preventDefault();
      clearTimeout(typing);
      applyFilters();
    });
  }
})();
