// Issues: the live board. Cards move where the server says, for every open browser.
"use strict";

(() => {
  const board = document.getElementById("board");
  if (!board) return;
  const status = document.getElementById("live-status");
  let lastSeq = Number(board.dataset.lastSeq || 0);
  let source = null;
  let attempt = 0;

  // --- Applying events ---------------------------------------------------------------------
  function column(statusId) {
    return board.querySelector(`.column-cards[data-status-id="${statusId}"]`);
  }

  function recount() {
    board.querySelectorAll(".board-column").forEach((section) => {
      section.querySelector("[data-count]").textContent =
        section.querySelectorAll(".board-card:not([hidden])").length;
    });
  }

  function placeCard(html) {
    const template = document.createElement("template");
    template.innerHTML = html.trim();
    const card = template.content.firstElementChild;
    const existing = document.getElementById(card.id);
    // Our own move is already on screen: an event for a version we show changes nothing.
    if (existing && Number(existing.dataset.version) >= Number(card.dataset.version)) return;
    const target = column(card.dataset.statusId);
    if (!target) return;
    if (existing) existing.remove();
    const position = Number(card.dataset.position);
    const after = [...target.children].find((other) => Number(other.dataset.position) > position);
    target.insertBefore(card, after || null);
    card.classList.add("flash-card");
    setTimeout(() => card.classList.remove("flash-card"), 1500);
    if (window.issuesPaint) window.issuesPaint(card);
    applyFilters();
    recount();
  }

  function onEvent(message) {
    const seq = Number(message.lastEventId || 0);
    if (seq && seq <= lastSeq) return; // seen already (a replay after a reconnect)
    if (seq) lastSeq = seq;
    const data = JSON.parse(message.data);
    if (data.card) placeCard(data.card);
  }

  // --- The stream, with its own reconnection --------------------------------------------------
  function connect() {
    const url = `${board.dataset.eventsUrl}?last_event_id=${lastSeq}`;
    source = new EventSource(url);
    source.addEventListener("open", () => {
      attempt = 0;
      status.hidden = true;
      board.dataset.live = "open";
    });
    for (const kind of ["issue.created", "issue.updated", "issue.moved", "comment.added",
                        "comment.edited", "comment.deleted"]) {
      source.addEventListener(kind, onEvent);
    }
    source.addEventListener("resync", () => window.location.reload());
    source.addEventListener("error", () => {
      // Also for a non-200 answer. Reconnect by ourselves, with jittered backoff.
      source.close();
      board.dataset.live = "closed";
      status.hidden = false;
      attempt += 1;
      const delay = Math.min(30000, 500 * 2 ** Math.min(attempt, 6)) * (0.5 + Math.random());
      setTimeout(connect, delay);
    });
  }
  connect();
  // Lets a test (or a future "reconnect now" button) drop the stream as a network cut would.
  document.addEventListener("issues:drop", () => source.dispatchEvent(new Event("error")));

  // --- Moving cards ---------------------------------------------------------------------------
  function notice(text) {
    status.textContent = text;
    status.hidden = false;
    setTimeout(() => { status.hidden = true; status.textContent = "Reconnecting…"; }, 4000);
  }

  async function saveMove(card, before) {
    const target = card.closest(".column-cards");
    const body = new URLSearchParams({
      issue: card.dataset.issueId,
      status: target.dataset.statusId,
      version: card.dataset.version,
      before: before ? before.dataset.issueId : "",
    });
    const response = await fetch(board.dataset.moveUrl, {
      method: "POST",
      headers: { "X-CSRF-Token": board.dataset.csrf, Accept: "application/json" },
      body,
    });
    const answer = await response.json().catch(() => ({}));
    if (response.ok) {
      card.dataset.version = answer.version;
      card.dataset.statusId = answer.status_id;
      recount();
      return;
    }
    // Refused (someone moved or edited it first): put the board back as the server has it.
    notice((answer.error && answer.error.message) || "The move was refused.");
    const fresh = await fetch(window.location.href, { headers: { Accept: "text/html" } });
    const page = new DOMParser().parseFromString(await fresh.text(), "text/html");
    const freshBoard = page.getElementById("board");
    if (freshBoard) {
      board.querySelectorAll(".column-cards").forEach((list) => {
        const replacement = freshBoard.querySelector(
          `.column-cards[data-status-id="${list.dataset.statusId}"]`);
        if (replacement) list.innerHTML = replacement.innerHTML;
      });
      if (window.issuesPaint) window.issuesPaint(board);
      recount();
    }
  }

  if (board.dataset.writable === "true") {
    if (window.Sortable) {
      board.querySelectorAll(".column-cards").forEach((list) => {
        window.Sortable.create(list, {
          group: "board",
          animation: 120,
          onEnd: (event) => saveMove(event.item, event.item.nextElementSibling),
        });
      });
    }
    board.addEventListener("keydown", (event) => {
      const card = event.target.closest(".board-card");
      if (!card || !event.shiftKey) return;
      const columns = [...board.querySelectorAll(".column-cards")];
      const here = card.closest(".column-cards");
      let before;
      if (event.key === "ArrowUp" && card.previousElementSibling) {
        before = card.previousElementSibling;
        here.insertBefore(card, before);
      } else if (event.key === "ArrowDown" && card.nextElementSibling) {
        before = card.nextElementSibling.nextElementSibling;
        here.insertBefore(card, before);
      } else if (event.key === "ArrowLeft" || event.key === "ArrowRight") {
        const next = columns[columns.indexOf(here) + (event.key === "ArrowLeft" ? -1 : 1)];
        if (!next) return;
        before = null;
        next.appendChild(card);
      } else {
        return;
      }
      event.preventDefault();
      card.focus();
      saveMove(card, before);
    });
    board.querySelectorAll(".board-card").forEach((card) => { card.tabIndex = 0; });
    new MutationObserver(() => {
      board.querySelectorAll(".board-card:not([tabindex])").forEach((card) => { card.tabIndex = 0; });
    }).observe(board, { childList: true, subtree: true });
  }

  // --- Filters --------------------------------------------------------------------------------
  const filters = document.querySelector("[data-board-filters]");
  function applyFilters() {
    if (!filters) return;
    const value = (name) => filters.querySelector(`[data-filter="${name}"]`).value.trim().toLowerCase();
    const text = value("text"), type = value("type"), assignee = value("assignee"), label = value("label");
    board.querySelectorAll(".board-card").forEach((card) => {
      const labels = (card.dataset.labels || "").toLowerCase().split(",");
      card.hidden = !((!text || card.textContent.toLowerCase().includes(text))
        && (!type || card.dataset.type === type)
        && (!assignee || (card.dataset.assignee || "").startsWith(assignee.replace(/^@/, "")))
        && (!label || labels.includes(label)));
    });
    recount();
  }
  if (filters) {
    filters.addEventListener("input", applyFilters);
    filters.addEventListener("submit", (event) => event.preventDefault());
  }
})();
