// Passkeys on Tessera's hosted pages (served from /assets, so the CSP's script-src 'self' allows it, with no inline
// script). It needs /assets/simplewebauthn-browser.js first (the @simplewebauthn/browser bundle, a copy checked
// against the installed package by test/passkeys/assets.test.ts). Every page works without it: the login form, the
// code step and the rename/remove forms are plain forms; only the WebAuthn ceremonies need it.
(() => {
  const swa = window.SimpleWebAuthnBrowser;
  if (!swa?.browserSupportsWebAuthn()) return;
  for (const el of document.querySelectorAll("[data-passkey-only]")) el.hidden = false;
  for (const el of document.querySelectorAll("[data-passkey-unsupported]")) el.hidden = true;

  const field = (name) => document.querySelector(`input[name="${name}"]`)?.value;
  const errorBox = document.getElementById("passkey-error");
  const showError = (message) => {
    if (!errorBox) return;
    errorBox.textContent = message;
    errorBox.hidden = false;
  };

  async function post(url, body = {}) {
    const continuation = {};
    for (const name of ["return_to", "client_id"]) if (field(name)) continuation[name] = field(name);
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "content-type": "application/json", accept: "application/json" },
      body: JSON.stringify({ ...continuation, ...body, _csrf: field("_csrf") }),
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      // The JSON API's error shape: { error: { code, message, status } }.
      const error = data.error || {};
      throw Object.assign(new Error(error.message || "Something went wrong. Try again."), { code: error.code });
    }
    return data;
  }

  /** The browser's "cancelled" and "timed out" are not errors worth a message. */
  const quiet = (error) => error && (error.name === "NotAllowedError" || error.name === "AbortError");

  async function signIn(autofill) {
    const optionsJSON = await post("/api/v1/passkeys/sign-in/options");
    const credential = await swa.startAuthentication({ optionsJSON, useBrowserAutofill: autofill });
    const { redirect } = await post("/api/v1/passkeys/sign-in", { credential });
    window.location.assign(redirect);
  }

  // Sign-in page: the autofill (conditional UI) on the email field, and the "Continue with a passkey" button.
  const signInButton = document.getElementById("passkey-sign-in");
  if (signInButton) {
    swa.browserSupportsWebAuthnAutofill().then((supported) => {
      if (supported) signIn(true).catch((error) => quiet(error) || showError(error.message));
    });
    signInButton.addEventListener("click", () => {
      signIn(false).catch((error) => quiet(error) || showError(error.message));
    });
  }

  // Second step after the password.
  const stepButton = document.getElementById("passkey-second-step");
  if (stepButton) {
    stepButton.addEventListener("click", async () => {
      try {
        const optionsJSON = await post("/api/v1/passkeys/second-step/options");
        const credential = await swa.startAuthentication({ optionsJSON });
        const { redirect } = await post("/api/v1/passkeys/second-step", { credential });
        window.location.assign(redirect);
      } catch (error) {
        if (!quiet(error)) showError(error.message);
      }
    });
  }

  // Account page: add a passkey after a fresh password or code.
  const addForm = document.getElementById("passkey-add");
  if (addForm) {
    addForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      const proof = { password: field("password") || undefined, code: field("code") || undefined };
      try {
        const optionsJSON = await post("/api/v1/passkeys/registration/options", proof);
        const credential = await swa.startRegistration({ optionsJSON });
        await post("/api/v1/passkeys/registration", { credential, name: field("name") || undefined });
        window.location.assign("/account/passkeys?notice=added");
      } catch (error) {
        showError(quiet(error) ? "No passkey was added." : error.message);
      }
    });
  }
})();
