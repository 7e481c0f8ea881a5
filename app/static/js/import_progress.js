// Issues: an import's job page. Its progress arrives on the project's live stream (live.js
// hands it over as an `issues:live` event of kind "import"); the bar moves with each report,
// and the summary (or the error) is fetched once the job is over. Progress is state, not
// history: whenever the stream (re)opens, the page reads the job once to catch up.
"use strict";

(() => {
  const live = document.getElementById("live");
  if (!document.getElementById("import-progress") || !live) return;
  const box = () => document.getElementById("import-progress");
  const finished = (status) => status === "done" || status === "failed";

  async function refresh() {
    const current = box();
    const answer = await fetch(current.dataset.url, { headers: { Accept: "text/html" } });
    if (!answer.ok) return;
    const holder = document.createElement("div");
    holder.innerHTML = await answer.text();
    const fresh = holder.firstElementChild;
    if (fresh) current.replaceWith(fresh);
  }

  document.addEventListener("issues:live", ({ detail }) => {
    const current = box();
    if (detail.kind !== "import" || String(detail.data.job_id) !== current.dataset.job) return;
    if (finished(current.dataset.status)) return;
    const { status, processed, total } = detail.data;
    if (finished(status)) {
      refresh();
      return;
    }
    current.dataset.status = status;
    current.querySelector(".import-status").textContent = status;
    current.querySelector(".import-count").textContent = total ? ` · ${processed} of ${total} issues` : "";
    const bar = current.querySelector("progress");
    bar.max = total || 1;
    bar.value = processed;
    bar.textContent = `${processed} of ${total}`;
  });

  // The stream opened (first time or again): what happened meanwhile is read from the job.
  new MutationObserver(() => {
    if (live.dataset.state === "open" && !finished(box().dataset.status)) refresh();
  }).observe(live, { attributes: true, attributeFilter: ["data-state"] });
})();
