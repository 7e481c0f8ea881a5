// Issues: passkeys. Adding one on the account page, signing in with one on the login page
// (the button, and the browser's autofill offering passkeys in the email field), and using one
// as the second step of a password login. The ceremonies are @simplewebauthn/browser's
// (vendor/simplewebauthn-browser.umd.min.js, loaded before this file); the server checks
// every answer. Without JavaScript or WebAuthn the buttons stay hidden.
"use strict";

(() => {
  const webauthn = window.SimpleWebAuthnBrowser;
  if (!webauthn || !webauthn.browserSupportsWebAuthn()) return;

  const csrf = (scope) =>
    ((scope || document).querySelector('input[name="csrf_token"]') ||
      document.querySelector('input[name="csrf_token"]') || {}).value || "";

  async function post(url, body, scope) {
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/json",
        "X-CSRF-Token": csrf(scope),
      },
      body: JSON.stringify(body || {}),
    });
    let answer = null;
    try {
      answer = await response.json();
    } catch (error) {
      answer = null;
    }
    if (!response.ok) {
      const message = answer && answer.error && answer.error.message;
      throw new Error(message || `The server refused (${response.status}). Reload the page and try again.`);
    }
    return answer;
  }

  // What the browser says when the person closes its dialog, or no passkey fits.
  function explain(error) {
    if (error && error.name === "NotAllowedError") return "No passkey was used. Try again when you are ready.";
    if (error && error.name === "InvalidStateError") return "This device has a passkey for your account already.";
    return (error && error.message) || "Something went wrong. Try again.";
  }

  function say(box, text) {
    const line = box.querySelector("[data-passkey-message]");
    if (line) {
      line.textContent = text;
      line.hidden = !text;
    }
  }

  // --- The account page: add a passkey -----------------------------------------------------
  for (const form of document.querySelectorAll("form[data-passkey-add]")) {
    form.hidden = false;
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const button = form.querySelector("button[type=submit]");
      const name = form.querySelector('input[name="name"]').value;
      button.disabled = true;
      say(form, "");
      try {
        const optionsJSON = await post(form.dataset.optionsUrl, { name }, form);
        const credential = await webauthn.startRegistration({ optionsJSON });
        const done = await post(form.action, { name, credential }, form);
        window.location.assign(done.redirect);
      } catch (error) {
        say(form, explain(error));
        button.disabled = false;
      }
    });
  }

  // --- Signing in: the button, the autofill, the second step ----------------------------------
  async function signIn(box, { autofill = false } = {}) {
    const optionsJSON = await post(box.dataset.optionsUrl, {}, box);
    const credential = await webauthn.startAuthentication({ optionsJSON, useBrowserAutofill: autofill });
    const remember = document.querySelector('input[name="remember"]');
    const next = document.querySelector('input[name="next"]');
    const done = await post(
      box.dataset.verifyUrl,
      { credential, remember: Boolean(remember && remember.checked), next: next ? next.value : "/" },
      box,
    );
    window.location.assign(done.redirect);
  }

  for (const box of document.querySelectorAll("[data-passkey-sign-in]")) {
    box.hidden = false;
    const button = box.querySelector("button");
    button.addEventListener("click", async () => {
      button.disabled = true;
      say(box, "");
      try {
        await signIn(box);
      } catch (error) {
        say(box, explain(error));
        button.disabled = false;
      }
    });
    // Conditional UI: once the email field is focused, its autofill lists this site's
    // passkeys too, and choosing one signs in. Started on focus rather than on load, so that a
    // visitor who never reaches for the field (or uses the button) starts no ceremony for it.
    const field = document.querySelector('input[autocomplete~="webauthn"]');
    if (box.dataset.autofill === "on" && field) {
      field.addEventListener(
        "focus",
        async () => {
          if (!(await webauthn.browserSupportsWebAuthnAutofill())) return;
          // Refused or cut short by the button's ceremony: the page simply goes on.
          signIn(box, { autofill: true }).catch(() => {});
        },
        { once: true },
      );
    }
  }
})();
