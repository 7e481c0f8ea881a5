// Issues: attaching files on an issue's page. Pick files, drop them onto the page, or paste an
// image into the description or a comment box: each uploads with its progress shown, and a
// pasted or dropped-into-a-box file becomes a Markdown link at the cursor once it is stored.
// Without this file the section's plain form still uploads one file at a time.
"use strict";

(() => {
  if (window.issuesAttachments) return; // the page's live refresh may bring the script again
  window.issuesAttachments = true;

  const section = () => document.getElementById("attachments");
  const uploadUrl = () => section() && section().dataset.uploadUrl;
  const csrf = () => (document.querySelector('input[name="csrf_token"]') || {}).value || "";

  function status(text) {
    const line = section() && section().querySelector(".upload-status");
    if (line) line.textContent = text;
  }

  function progress(percent) {
    const bar = section() && section().querySelector(".upload-progress");
    if (!bar) return;
    bar.hidden = percent === null;
    if (percent !== null) bar.value = percent;
  }

  // XMLHttpRequest rather than fetch: only it reports an upload's progress.
  function upload(file, { commentId, onProgress }) {
    return new Promise((resolve, reject) => {
      const body = new FormData();
      body.append("file", file, file.name || "pasted-image.png");
      if (commentId) body.append("comment_id", commentId);
      const request = new XMLHttpRequest();
      request.open("POST", uploadUrl());
      request.setRequestHeader("X-CSRF-Token", csrf());
      request.setRequestHeader("Accept", "application/json");
      request.upload.addEventListener("progress", (event) => {
        if (event.lengthComputable) onProgress(Math.round((100 * event.loaded) / event.total));
      });
      request.addEventListener("load", () => {
        let answer = null;
        try {
          answer = JSON.parse(request.responseText);
        } catch (error) {
          answer = null;
        }
        if (request.status === 201 && answer) resolve(answer);
        else reject(new Error((answer && answer.error && answer.error.message) || `Upload failed (${request.status}).`));
      });
      request.addEventListener("error", () => reject(new Error("The upload was cut off; try again.")));
      request.send(body);
    });
  }

  // The section again from the server, so that the new file shows with its thumbnail.
  async function refreshList() {
    const response = await fetch(window.location.href, { headers: { Accept: "text/html" } });
    if (!response.ok) return;
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    const fresh = page.getElementById("attachments");
    const current = section();
    if (fresh && current) {
      const keep = current.querySelector(".upload-status").textContent;
      current.replaceWith(fresh);
      status(keep);
    }
  }

  function replaceInBox(box, placeholder, text) {
    const at = box.value.indexOf(placeholder);
    if (at < 0) {
      box.value += text;
      return;
    }
    box.value = box.value.slice(0, at) + text + box.value.slice(at + placeholder.length);
    box.selectionStart = box.selectionEnd = at + text.length;
  }

  // The comment a box edits, if it is one's existing comment (a new comment's files are
  // claimed by the comment when it is posted).
  function commentOf(box) {
    const match = /^comment-body-(\d+)$/.exec(box.id || "");
    return match ? match[1] : null;
  }

  async function uploadAll(files, box) {
    for (const file of files) {
      const name = file.name || "pasted-image.png";
      const placeholder = `[Uploading ${name}…]`;
      if (box) {
        const start = box.selectionStart ?? box.value.length;
        const end = box.selectionEnd ?? start;
        box.value = box.value.slice(0, start) + placeholder + box.value.slice(end);
      }
      status(`Uploading ${name}…`);
      progress(0);
      try {
        const answer = await upload(file, {
          commentId: box ? commentOf(box) : null,
          onProgress: (percent) => {
            progress(percent);
            status(`Uploading ${name}: ${percent}%`);
          },
        });
        if (box) {
          replaceInBox(box, placeholder, answer.markdown);
          box.dispatchEvent(new Event("input", { bubbles: true }));
        }
        status(`Uploaded ${answer.file_name}.`);
      } catch (error) {
        if (box) replaceInBox(box, placeholder, "");
        status(error.message);
      } finally {
        progress(null);
      }
    }
    await refreshList().catch(() => null);
  }

  const isTextBox = (element) => element && element.tagName === "TEXTAREA" && element.closest("#issue");

  document.addEventListener("change", (event) => {
    if (!event.target.matches("[data-attachment-picker]") || !uploadUrl()) return;
    const files = [...event.target.files];
    event.target.value = "";
    uploadAll(files, null);
  });

  document.addEventListener("paste", (event) => {
    if (!isTextBox(event.target) || !uploadUrl()) return;
    const files = [...((event.clipboardData && event.clipboardData.files) || [])];
    if (!files.length) return; // plain text pastes as usual
    event.preventDefault();
    uploadAll(files, event.target);
  });

  const carriesFiles = (event) => event.dataTransfer && [...event.dataTransfer.types].includes("Files");

  document.addEventListener("dragover", (event) => {
    if (!carriesFiles(event) || !uploadUrl()) return;
    event.preventDefault();
    section().classList.add("dropping");
  });
  document.addEventListener("dragleave", (event) => {
    if (section() && event.relatedTarget === null) section().classList.remove("dropping");
  });
  document.addEventListener("drop", (event) => {
    if (!carriesFiles(event) || !uploadUrl()) return;
    event.preventDefault();
    section().classList.remove("dropping");
    uploadAll([...event.dataTransfer.files], isTextBox(event.target) ? event.target : null);
  });
})();
