// Issues: small enhancements over server-rendered pages. Everything works without this file.
"use strict";

document.documentElement.classList.add("js");

function typingInField(event) {
  const target = event.target;
  return target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName);
}

// Keyboard shortcuts: c creates an issue, / searches, ? lists them.
document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.key === "Escape" && typingInField(event)) {
    event.target.blur();
    return;
  }
  if (typingInField(event)) return;
  const help = document.getElementById("shortcuts");
  if (event.key === "?") {
    event.preventDefault();
    if (help && !help.open) help.showModal();
  } else if (event.key === "/") {
    const search = document.querySelector('[data-shortcut="/"]');
    if (search) {
      event.preventDefault();
      search.focus();
      search.select();
    }
  } else if (event.key === "c") {
    const create = document.querySelector('[data-shortcut="c"]');
    if (create) {
      event.preventDefault();
      create.click();
    }
  }
});

// Label colours come from data attributes: the CSP allows no inline style.
function paintLabels(root) {
  root.querySelectorAll("[data-color]").forEach((dot) => {
    if (/^#[0-9a-fA-F]{6}$/.test(dot.dataset.color)) {
      dot.style.backgroundColor = dot.dataset.color;
    }
  });
}

// Selecting issues for a bulk edit.
document.addEventListener("change", (event) => {
  if (event.target.matches("[data-select-all]")) {
    document.querySelectorAll("[data-select-one]").forEach((box) => {
      box.checked = event.target.checked;
    });
  }
});

// Without htmx, in-place edit forms submit themselves when a value changes.
document.addEventListener("change", (event) => {
  const form = event.target.closest("form.field-form");
  if (form && !window.htmx && event.target.tagName !== "BUTTON") form.requestSubmit();
});

window.issuesPaint = paintLabels;
document.addEventListener("DOMContentLoaded", () => paintLabels(document));
document.addEventListener("htmx:afterSwap", (event) => paintLabels(event.target));
