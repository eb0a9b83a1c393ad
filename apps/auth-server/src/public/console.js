// Admin console progressive enhancement (#14): "copy" buttons for secrets shown once. The pages work without it
// (the secret is in a read-only field to select by hand); this only reveals the buttons and copies on click.
for (const button of document.querySelectorAll("button[data-copy-target]")) {
  const target = document.getElementById(button.getAttribute("data-copy-target"));
  if (!target || !navigator.clipboard) continue;
  button.hidden = false;
  button.addEventListener("click", async () => {
    const status = button.nextElementSibling;
    try {
      await navigator.clipboard.writeText(target.value);
      if (status) status.textContent = "Copied.";
    } catch {
      target.select();
      if (status) status.textContent = "Select the text and copy it.";
    }
  });
}
