// Helpers shared by the console's pages. Values are written with textContent only.
"use strict";

window.ReelUI = Object.freeze({
  // Copy an element's text; fall back to selecting it where the clipboard is not allowed.
  async copyText(source, statusEl) {
    try {
      await navigator.clipboard.writeText(source.textContent);
      if (statusEl) statusEl.textContent = "Copied.";
    } catch (_) {
      window.getSelection().selectAllChildren(source);
      if (statusEl) statusEl.textContent = "Selected: press Ctrl+C to copy.";
    }
  },
  // Only http(s) URLs become src/href; anything else is dropped.
  httpUrl(value) {
    try {
      const url = new URL(value, window.location.href);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (_) {
      return null;
    }
  },
});

// A thumbnail whose file is missing collapses instead of showing a broken image.
document.addEventListener("error", (event) => {
  const el = event.target;
  if (el instanceof HTMLImageElement && el.classList.contains("thumb")) el.classList.add("missing");
}, true);
