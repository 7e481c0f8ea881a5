// Issues: a page's live connection. Opens the project's event stream, shows "Reconnecting…"
// while it is down and who else is here. Each event is handed to the page as an `issues:live`
// DOM event ({kind, seq, data}).
//
// A stream that drops is the browser's to reconnect: EventSource waits as long as the server's
// `retry:` line says and sends the last event id it saw as Last-Event-ID, and the server replays
// what the page missed. Only a stream the server refuses (an error status, not events) makes the
// browser give up; then this file opens a new one itself.
"use strict";

(() => {
  const live = document.getElementById("live");
  if (!live) return;
  const status = document.getElementById("live-status");
  const notice = document.getElementById("live-notice");
  const presence = document.getElementById("presence");
  const me = Number(live.dataset.me);
  const view = live.dataset.view;
  let lastSeq = Number(live.dataset.lastSeq || 0);
  let source = null;
  let attempt = 0;

  const KINDS = ["issue.created", "issue.updated", "issue.moved", "comment.added",
                 "comment.edited", "comment.deleted", "subissue.added", "subissue.removed",
                 "subissue.changed", "relation.added", "relation.removed",
                 "relation.blocker_changed"];

  function onEvent(message) {
    const seq = Number(message.lastEventId || 0);
    if (seq && seq <= lastSeq) return; // seen already (a replay after a reconnect)
    if (seq) lastSeq = seq;
    const data = JSON.parse(message.data);
    document.dispatchEvent(new CustomEvent("issues:live", { detail: { kind: message.type, seq, data } }));
  }

  // --- Presence: the people on this same page, each once, me excepted ----------------------------
  function showPresence(message) {
    const people = new Map();
    for (const viewer of JSON.parse(message.data).viewers || []) {
      if (viewer.view === view && viewer.id !== me) people.set(viewer.id, viewer);
    }
    const list = presence.querySelector(".presence-people");
    list.replaceChildren(...[...people.values()].map((viewer) => {
      const badge = document.createElement("span");
      badge.className = "avatar small";
      badge.title = viewer.name;
      badge.textContent = viewer.initials;
      badge.dataset.viewer = viewer.id;
      const name = document.createElement("span");
      name.className = "visually-hidden";
      name.textContent = viewer.name;
      badge.append(name);
      return badge;
    }));
    presence.hidden = people.size === 0;
  }

  // Too far behind the log: reload the page. A page reloaded for this a moment ago that hears it
  // again waits a while first, so a server that keeps saying it can never make a reload loop.
  function resync() {
    source.close();
    const key = `issues:resync:${live.dataset.liveUrl}`;
    const last = Number(sessionStorage.getItem(key) || 0);
    const wait = Date.now() - last < 10000 ? 30000 : 0;
    if (wait) {
      status.textContent = "Out of date: reloading shortly…";
      status.hidden = false;
    }
    setTimeout(() => {
      sessionStorage.setItem(key, String(Date.now()));
      window.location.reload();
    }, wait);
  }

  // --- The stream --------------------------------------------------------------------------------
  function connect() {
    const url = new URL(live.dataset.liveUrl, window.location.href);
    // Where a new stream starts; the browser's own reconnections send a (preferred) header.
    url.searchParams.set("last_event_id", lastSeq);
    url.searchParams.set("view", view);
    source = new EventSource(url);
    source.addEventListener("open", () => {
      attempt = 0;
      status.hidden = true;
      live.dataset.state = "open";
    });
    for (const kind of KINDS) source.addEventListener(kind, onEvent);
    source.addEventListener("presence", showPresence);
    // State outside the log (no id): an import's progress, for its job page.
    source.addEventListener("import", (message) => {
      const data = JSON.parse(message.data);
      document.dispatchEvent(new CustomEvent("issues:live", { detail: { kind: "import", seq: 0, data } }));
    });
    source.addEventListener("resync", resync);
    source.addEventListener("error", () => {
      live.dataset.state = "closed";
      status.textContent = "Reconnecting…";
      status.hidden = false;
      // Dropped: the browser is already coming back, after `retry:`, with its Last-Event-ID.
      if (source.readyState !== EventSource.CLOSED) return;
      // Refused (signed out, overloaded, a proxy's error page): a new stream from our last
      // event, with jittered backoff so that refused pages do not all return at once.
      attempt += 1;
      const delay = Math.min(30000, 500 * 2 ** Math.min(attempt, 6)) * (0.5 + Math.random());
      setTimeout(connect, delay);
    });
  }
  connect();

  // A short message in the live bar (a refused move, say), beside the connection's state: a
  // stream that drops meanwhile does not write over it. A newer message replaces it.
  let noticeTimer = null;
  window.issuesNotice = (text) => {
    notice.textContent = text;
    notice.hidden = false;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => { notice.hidden = true; }, 8000);
  };
})();
