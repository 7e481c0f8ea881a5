// Issues: the page's layout. The sidebar button (folded away on a wide screen, remembered in a
// cookie the server reads; shown above the page on a narrow one, for this visit only), the
// board's own scroll area ending at the bottom of the viewport, and on a phone the switch
// between the board's columns. Everything works without this file.
"use strict";

(() => {
  // Set by the board's part: what to measure again when the sidebar moves things.
  let relayout = () => {};

  // --- The sidebar -------------------------------------------------------------------------------
  const NARROW = window.matchMedia("(max-width: 56rem)");
  const COOKIE = "issues_sidebar";
  const shell = document.querySelector(".shell");
  const toggle = document.querySelector("[data-sidebar-toggle]");

  function sidebarShown() {
    if (NARROW.matches) return shell.classList.contains("sidebar-open");
    return !shell.classList.contains("sidebar-collapsed");
  }

  function showState() {
    toggle.setAttribute("aria-expanded", String(sidebarShown()));
  }

  function remember(collapsed) {
    const age = collapsed ? 365 * 24 * 3600 : 0;
    document.cookie = `${COOKIE}=${collapsed ? "collapsed" : ""}; path=/; max-age=${age}; samesite=lax`;
  }

  if (shell && toggle && document.getElementById("sidebar")) {
    toggle.hidden = false;
    toggle.addEventListener("click", () => {
      if (NARROW.matches) {
        shell.classList.toggle("sidebar-open");
      } else {
        remember(shell.classList.toggle("sidebar-collapsed"));
      }
      showState();
      relayout();
    });
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && NARROW.matches && shell.classList.contains("sidebar-open")) {
        shell.classList.remove("sidebar-open");
        showState();
        relayout();
        toggle.focus();
      }
    });
    NARROW.addEventListener("change", () => {
      shell.classList.remove("sidebar-open");
      showState();
    });
    // A page shown again from the back/forward cache follows the choice made since.
    window.addEventListener("pageshow", () => {
      const collapsed = document.cookie.split("; ").includes(`${COOKIE}=collapsed`);
      shell.classList.toggle("sidebar-collapsed", collapsed);
      showState();
    });
    showState();
  }

  // --- The board's area --------------------------------------------------------------------------
  const board = document.getElementById("board");
  if (!board) return;

  // The area ends at the bottom of the viewport: it needs to know where it starts.
  function measure() {
    const top = board.getBoundingClientRect().top + window.scrollY;
    board.style.setProperty("--board-top", `${Math.round(top)}px`);
  }
  measure();
  relayout = measure;
  // Swimlanes size their columns by how many there are.
  const heads = board.querySelectorAll(".board-heads .column-head").length;
  if (heads) board.style.setProperty("--columns", String(heads));
  window.addEventListener("resize", measure);
  // What sits above the board can change height (a banner, the filters wrapping): none of it
  // depends on the board's own height, so measuring again cannot loop.
  const above = new ResizeObserver(measure);
  for (let node = board.previousElementSibling; node; node = node.previousElementSibling) {
    above.observe(node);
  }
  for (const part of [document.querySelector(".topbar"), document.querySelector(".banner")]) {
    if (part) above.observe(part);
  }

  // --- The column switch (a phone shows one column at a time) -----------------------------------
  const switchLinks = [...document.querySelectorAll("[data-column-switch]")];
  if (!switchLinks.length) return;

  function columnOf(statusId) {
    const head = board.querySelector(`.column-head[data-status-id="${statusId}"]`);
    return head ? head.closest(".board-column") || head : null;
  }

  // The column whose left edge is nearest the area's: the one in view.
  function markCurrent() {
    const left = board.getBoundingClientRect().left;
    let nearest = null;
    let distance = Infinity;
    for (const link of switchLinks) {
      const column = columnOf(link.dataset.columnSwitch);
      if (!column) continue;
      const away = Math.abs(column.getBoundingClientRect().left - left);
      if (away < distance) [nearest, distance] = [link, away];
    }
    for (const link of switchLinks) {
      if (link === nearest) link.setAttribute("aria-current", "true");
      else link.removeAttribute("aria-current");
    }
    // Keep the marked one in view in the switch itself (it scrolls sideways when crowded).
    const strip = nearest && nearest.parentElement.getBoundingClientRect();
    const mark = nearest && nearest.getBoundingClientRect();
    if (mark && mark.left < strip.left) nearest.parentElement.scrollLeft += mark.left - strip.left;
    if (mark && mark.right > strip.right) nearest.parentElement.scrollLeft += mark.right - strip.right;
  }

  let pending = false;
  board.addEventListener("scroll", () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      markCurrent();
    });
  }, { passive: true });

  for (const link of switchLinks) {
    link.addEventListener("click", (event) => {
      const column = columnOf(link.dataset.columnSwitch);
      if (!column) return;
      event.preventDefault();
      const still = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
      const left = column.getBoundingClientRect().left - board.getBoundingClientRect().left;
      board.scrollTo({ left: board.scrollLeft + left, behavior: still ? "auto" : "smooth" });
    });
  }
})();
