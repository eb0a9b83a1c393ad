/*
 * Tessera hosted pages: progressive enhancement only (every page works without it). Served from /assets/ under the
 * CSP (script-src 'self'). Labels come from data attributes on <body>, written in the page's language.
 */
(() => {
  const labels = document.body.dataset;

  // Show-password toggle: a button after each password input switches it between hidden and shown text.
  for (const input of document.querySelectorAll('input[type="password"]')) {
    const wrap = document.createElement("div");
    wrap.className = "password-wrap";
    input.parentNode.insertBefore(wrap, input);
    wrap.appendChild(input);
    const button = document.createElement("button");
    button.type = "button";
    button.className = "reveal";
    button.textContent = labels.showPassword || "Show";
    // A title, not an aria-label: the input's own label ("Password") must stay the only label naming a password field.
    button.title = labels.showPasswordLabel || "Show password";
    button.setAttribute("aria-pressed", "false");
    if (input.id) button.setAttribute("aria-controls", input.id);
    button.addEventListener("click", () => {
      const shown = input.type === "text";
      input.type = shown ? "password" : "text";
      button.textContent = shown ? labels.showPassword || "Show" : labels.hidePassword || "Hide";
      button.setAttribute("aria-pressed", String(!shown));
      input.focus();
    });
    wrap.appendChild(button);
    // A shown password goes back to hidden before the form is sent (so the browser does not keep it as text).
    input.form?.addEventListener("submit", () => {
      input.type = "password";
    });
  }

  // Password-strength hint on new passwords (register, reset, change): a rough estimate from length and variety. The
  // server's policy (length, common passwords) is what decides; this only nudges towards longer passwords.
  for (const input of document.querySelectorAll('input[autocomplete="new-password"]')) {
    const hint = document.createElement("span");
    hint.className = "strength";
    hint.id = `${input.id || input.name}-strength`;
    hint.setAttribute("aria-live", "polite");
    (input.closest(".field") || input.parentNode).appendChild(hint);
    const described = input.getAttribute("aria-describedby");
    input.setAttribute("aria-describedby", described ? `${described} ${hint.id}` : hint.id);
    input.addEventListener("input", () => {
      const value = input.value;
      if (!value) {
        hint.textContent = "";
        hint.dataset.level = "";
        return;
      }
      const classes = [/[a-z]/, /[A-Z]/, /[0-9]/, /[^A-Za-z0-9]/].filter((re) => re.test(value)).length;
      const words = value.trim().split(/\s+/).length;
      const score = value.length + classes * 2 + (words > 2 ? 6 : 0);
      const level = score >= 22 ? "strong" : score >= 14 ? "fair" : "weak";
      hint.dataset.level = level;
      hint.textContent =
        level === "strong" ? labels.strengthStrong : level === "fair" ? labels.strengthFair : labels.strengthWeak;
    });
  }

  // Copy the recovery codes (the download link works without script).
  const copy = document.querySelector("[data-copy-codes]");
  if (copy && navigator.clipboard) {
    copy.hidden = false;
    const original = copy.textContent;
    copy.addEventListener("click", async () => {
      const codes = [...document.querySelectorAll(".recovery-codes code")].map((c) => c.textContent).join("\n");
      try {
        await navigator.clipboard.writeText(`${codes}\n`);
        copy.textContent = labels.copied || "Copied";
        setTimeout(() => {
          copy.textContent = original;
        }, 2000);
      } catch {
        copy.textContent = original;
      }
    });
  }

  // Pending link (/federation/link): prove the existing account with one of its passkeys. Needs
  // /assets/simplewebauthn-browser.js, which the page loads before this script; without it the button stays hidden and
  // the password and emailed-link proofs still work.
  const linkButton = document.getElementById("passkey-link");
  const swa = window.SimpleWebAuthnBrowser;
  if (linkButton && swa?.browserSupportsWebAuthn()) {
    for (const el of document.querySelectorAll("[data-passkey-only]")) el.hidden = false;
    const errorBox = document.getElementById("passkey-error");
    const csrf = document.querySelector('input[name="_csrf"]')?.value;
    const post = async (url, body = {}) => {
      const response = await fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "content-type": "application/json", accept: "application/json" },
        body: JSON.stringify({ ...body, _csrf: csrf }),
      });
      const data = await response.json().catch(() => ({}));
      // The JSON error shape: { error: { code, message, status } }, the message in the page's language.
      if (!response.ok) throw new Error(data.error?.message || linkButton.dataset.error);
      return data;
    };
    linkButton.addEventListener("click", async () => {
      linkButton.disabled = true;
      try {
        const optionsJSON = await post("/federation/link/passkey/options");
        const credential = await swa.startAuthentication({ optionsJSON });
        const { redirect } = await post("/federation/link/passkey", { credential });
        window.location.assign(redirect);
      } catch (error) {
        // The browser's "cancelled" and "timed out" are not worth a message.
        if (error?.name !== "NotAllowedError" && error?.name !== "AbortError" && errorBox) {
          errorBox.textContent = error?.message || linkButton.dataset.error;
          errorBox.hidden = false;
        }
        linkButton.disabled = false;
      }
    });
  }
})();
