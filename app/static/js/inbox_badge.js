// The header's Inbox badge, kept live: /inbox/events sends the unread count on connect and
// whenever it changes (decision 0028). EventSource reconnects by itself after `retry:`, and a
// reconnect just reads the count again.
(function () {
  "use strict";
  const link = document.querySelector("[data-inbox-badge]");
  if (!link || !window.EventSource) return;
  const badge = link.querySelector("[data-inbox-count]");

  function show(count, label) {
    badge.textContent = label;
    badge.hidden = count === 0;
    link.setAttribute("aria-label", "Inbox, " + (count === 0 ? "no" : label) + " unread");
    link.dataset.unread = String(count);
  }

  const events = new EventSource(link.dataset.inboxEvents);
  events.addEventListener("count", function (event) {
    try {
      const data = JSON.parse(event.data);
      show(Number(data.unread) || 0, String(data.label));
    } catch (error) {
      // A malformed event is ignored: the next one carries the whole count again.
    }
  });
  window.addEventListener("pagehide", function () { events.close(); });
})();
