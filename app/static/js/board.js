// Issues: the board. Cards move where the server says, for every open browser; a person moves
// them by dragging, with a card's menu, or with Shift+arrows.
"use strict";

(() => {
  const board = document.getElementById("board");
  if (!board) return;
  const withLanes = board.dataset.lanes === "assignee";
  const notice = (text) => (window.issuesNotice ? window.issuesNotice(text) : null);

  // --- Where cards go -------------------------------------------------------------------------
  function laneOf(card) {
    if (!withLanes) return board;
    const handle = card.dataset.assignee || "";
    let lane = [...board.querySelectorAll(".lane")].find((one) => one.dataset.lane === handle);
    if (!lane) lane = newLane(handle, card.dataset.assigneeName || handle);
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

  function recount() {
    const filtering = filters && [...filters.querySelectorAll("[data-filter]")].some((f) => f.value);
    board.querySelectorAll("[data-count-for]").forEach((count) => {
      const list = `.column-cards[data-status-id="${count.dataset.countFor}"]`;
      const shown = board.querySelectorAll(`${list} .board-card:not([hidden])`).length;
      // A long column shows its first cards only; unfiltered, the count includes the rest.
      const more = board.querySelector(`${list} ~ [data-hidden-cards]`);
      count.textContent = shown + (more && !filtering ? Number(more.dataset.hiddenCards) : 0);
    });
    board.querySelectorAll(".lane").forEach((lane) => {
      lane.querySelector("[data-lane-count]").textContent =
        lane.querySelectorAll(".board-card:not([hidden])").length;
    });
  }

  function prepare(card) {
    if (board.dataset.writable !== "true") return;
    card.tabIndex = 0;
    const button = card.querySelector("[data-card-menu]");
    if (button) button.hidden = false;
  }

  function placeCard(html) {
    const template = document.createElement("template");
    template.innerHTML = html.trim();
    const card = template.content.firstElementChild;
    const existing = document.getElementById(card.id);
    // Our own move is already on screen: an event for a version we show changes nothing
    // (unless that card sits in another column than its own, as a board read mid-change can).
    if (existing && Number(existing.dataset.version) >= Number(card.dataset.version)
        && existing.closest(".column-cards").dataset.statusId === existing.dataset.statusId) return;
    const target = column(card);
    if (!target) return;
    const hadFocus = existing && existing.contains(document.activeElement);
    if (existing) existing.remove();
    const position = Number(card.dataset.position);
    const after = [...target.children].find((other) => Number(other.dataset.position) > position);
    target.insertBefore(card, after || null);
    prepare(card);
    if (hadFocus) card.focus();
    card.classList.add("flash-card");
    setTimeout(() => card.classList.remove("flash-card"), 1500);
    if (window.issuesPaint) window.issuesPaint(card);
    applyFilters();
  }

  document.addEventListener("issues:live", (event) => {
    if (event.detail.data.card) placeCard(event.detail.data.card);
  });

  // --- Moving cards ---------------------------------------------------------------------------
  async function saveMove(card, before) {
    const target = card.closest(".column-cards");
    const body = new URLSearchParams({
      issue: card.dataset.issueId,
      status: target.dataset.statusId,
      version: card.dataset.version,
      before: before ? before.dataset.issueId : "",
    });
    recount();
    const response = await fetch(board.dataset.moveUrl, {
      method: "POST",
      headers: { "X-CSRF-Token": board.dataset.csrf, Accept: "application/json" },
      body,
    }).catch(() => null);
    const answer = response ? await response.json().catch(() => ({})) : {};
    if (response && response.ok) {
      card.dataset.version = answer.version;
      card.dataset.statusId = answer.status_id;
      return;
    }
    // Refused (someone moved or edited it first), or the network failed: put the board back
    // as the server has it, and say why.
    notice((answer.error && answer.error.message) || "The move was not saved. Try again.");
    await reloadCards();
  }

  async function reloadCards() {
    const fresh = await fetch(window.location.href, { headers: { Accept: "text/html" } });
    const page = new DOMParser().parseFromString(await fresh.text(), "text/html");
    const freshBoard = page.getElementById("board");
    if (!freshBoard) return;
    board.replaceChildren(...freshBoard.childNodes);
    board.querySelectorAll(".board-card").forEach(prepare);
    setUpDragging();
    if (window.issuesPaint) window.issuesPaint(board);
    applyFilters();
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
    let before;
    if (how === "up") {
      if (!card.previousElementSibling) return;
      before = card.previousElementSibling;
      here.insertBefore(card, before);
    } else if (how === "down") {
      if (!card.nextElementSibling) return;
      before = card.nextElementSibling.nextElementSibling;
      here.insertBefore(card, before);
    } else {
      const target = how instanceof Element ? how : null;
      if (!target || target === here) return;
      before = null;
      target.appendChild(card);
    }
    card.focus();
    saveMove(card, before);
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

  // --- Filters --------------------------------------------------------------------------------
  const filters = document.querySelector("[data-board-filters]");
  function applyFilters() {
    if (filters) {
      const value = (name) =>
        filters.querySelector(`[data-filter="${name}"]`).value.trim().toLowerCase();
      const text = value("text"), type = value("type");
      const assignee = value("assignee"), label = value("label");
      board.querySelectorAll(".board-card").forEach((card) => {
        const labels = (card.dataset.labels || "").toLowerCase().split(",");
        card.hidden = !((!text || card.textContent.toLowerCase().includes(text))
          && (!type || card.dataset.type === type)
          && (!assignee || (card.dataset.assignee || "").startsWith(assignee.replace(/^@/, "")))
          && (!label || labels.includes(label)));
      });
    }
    recount();
  }
  if (filters) {
    filters.addEventListener("input", applyFilters);
    filters.addEventListener("submit", (event) => event.preventDefault());
  }
})();
