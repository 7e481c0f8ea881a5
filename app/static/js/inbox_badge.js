// The header's Inbox badge, kept live: /inbox/events sends the unread count on connect and
// whenever it changes (decision 0028). EventSource reconnects by itself after `retry:`, and a
// reconnect just reads the count again.
(function () {
  "use strict";
  const link = document.querySelector("[data-inbox-badge]");
  if (!link || !window.EventSource) return;
  const badge = link.querySelector("[data-inbox-count]");
  let events = null;

  function show(count, label) {
    badge.textContent = label;
    badge.hidden = count === 0;
    link.setAttribute("aria-label", "Inbox, " + (count === 0 ? "no" : label) + " unread");
    link.dataset.unread = String(count);
  }

  function connect() {
    events = new EventSource(link.dataset.inboxEvents);
    events.addEventListener("count", function (event) {
      try {
        const data = JSON.parse(event.data);
        show(Number(data.unread) || 0, String(data.label));
      } catch (error) {
        // A malformed event is ignored: the next one carries the whole count again.
      }
    });
  }

  connect();
  // Closed when the page is left (no stream held by a page in the back-forward cache), and
  // opened again if the page comes back from it: the first event brings the count up to date.
  window.addEventListener("pagehide", function () { if (events) events.close(); });
  window.addEventListener("pageshow", function (event) { if (event.persisted) connect(); });
})();
