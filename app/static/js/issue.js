// Issues: an issue's page, live. When someone else changes the issue or its comments, the parts
// that changed are fetched again and swapped in place (not while the reader is editing them).
"use strict";

(() => {
  const article = () => document.getElementById("issue");
  if (!article()) return;
  const issueKey = article().dataset.issueKey;
  let refreshing = null;
  let again = false;

  // Parts of the page, each replaced whole unless the reader is in the middle of using it.
  const PARTS = [
    ".issue-head",
    ".description",
    ".relations",
    ".attachments",
    ".timeline",
    ".issue-side",
  ];

  function busy(part) {
    return part.contains(document.activeElement) || part.querySelector("details[open]");
  }

  async function refresh() {
    const response = await fetch(window.location.href, { headers: { Accept: "text/html" } });
    if (!response.ok) return;
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    const fresh = page.getElementById("issue");
    const current = article();
    if (!fresh || !current) return;
    // A fetch that left before our own edit and came back after it shows the issue as it was:
    // swapping it in would undo the edit on screen (and no later event would repair it).
    if (Number(fresh.dataset.version) < Number(current.dataset.version)) return;
    const known = new Set([...current.querySelectorAll(".timeline > li[id]")].map((li) => li.id));
    for (const selector of PARTS) {
      const mine = current.querySelector(selector);
      const theirs = fresh.querySelector(selector);
      if (mine && theirs && !busy(mine)) mine.replaceWith(theirs);
    }
    current.dataset.version = fresh.dataset.version;
    current.querySelectorAll(".timeline > li[id]").forEach((li) => {
      if (!known.has(li.id)) {
        li.classList.add("flash-card");
        setTimeout(() => li.classList.remove("flash-card"), 1500);
      }
    });
    if (window.issuesPaint) window.issuesPaint(current);
    if (window.htmx) window.htmx.process(current);
  }

  // Events come quickly in bursts: one fetch at a time, and one more if any came meanwhile.
  async function refreshSoon() {
    if (refreshing) {
      again = true;
      return;
    }
    do {
      again = false;
      refreshing = refresh().catch(() => null);
      await refreshing;
    } while (again);
    refreshing = null;
  }

  document.addEventListener("issues:live", (event) => {
    const { kind, data } = event.detail;
    if (data.key !== issueKey) return;
    // Our own edit is already on screen: an issue event for a version we show changes nothing.
    if (kind.startsWith("issue.") && Number(data.version) <= Number(article().dataset.version)) return;
    refreshSoon();
  });
})();
