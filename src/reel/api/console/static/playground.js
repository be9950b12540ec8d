// Reel playground: talks to the public API with the key the user pasted.
// The key lives only in this browser (sessionStorage, or localStorage when "remember" is on).
// Every value from the server or the user is written with textContent, never as HTML.
"use strict";

(() => {
  const STORE = "reel.apiKey";
  const POLL_MS = 1500;
  const $ = (id) => document.getElementById(id);

  const state = { key: null, pricing: null, account: null, taskId: null, timer: null, tick: null, cursor: null };

  // ---------- small helpers ----------
  const show = (el, on) => { el.hidden = !on; };
  const text = (el, value) => { el.textContent = value == null ? "" : String(value); };
  const httpUrl = window.ReelUI.httpUrl;
  const fmtSeconds = (s) => (s < 60 ? `${s.toFixed(0)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`);
  const radio = (name) => document.querySelector(`input[name="${name}"]:checked`).value;

  class ApiError extends Error {
    constructor(status, body) {
      super((body && body.error) || `HTTP ${status}`);
      this.status = status;
      this.code = (body && body.errorCode) || "HTTP_ERROR";
      this.body = body || {};
    }
  }

  async function api(path, { method = "GET", body, auth = true } = {}) {
    const headers = { Accept: "application/json" };
    if (auth) headers.Authorization = `Bearer ${state.key}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    let data = null;
    try { data = await res.json(); } catch (_) { data = null; }
    if (!res.ok) throw new ApiError(res.status, data); // a failed task is a 200 with success: false
    return data;
  }

  function describeError(err) {
    if (err instanceof ApiError) {
      if (err.code === "INSUFFICIENT_CREDITS" && err.body.requiredCredits) {
        return `${err.message} (this needs ${err.body.requiredCredits} credits).`;
      }
      if (err.code === "API_KEY_RATE_LIMIT_EXCEEDED") return `${err.message}. Try again shortly.`;
      return `${err.message} [${err.code}]`;
    }
    return "Could not reach the server. Check your connection and try again.";
  }

  // ---------- key and account ----------
  function loadStoredKey() {
    const fromSession = window.sessionStorage.getItem(STORE);
    const fromLocal = window.localStorage.getItem(STORE);
    $("key-remember").checked = Boolean(fromLocal);
    return fromSession || fromLocal;
  }

  function storeKey(key, remember) {
    window.sessionStorage.removeItem(STORE);
    window.localStorage.removeItem(STORE);
    if (key) (remember ? window.localStorage : window.sessionStorage).setItem(STORE, key);
  }

  async function useKey(key) {
    state.key = key;
    show($("key-error"), false);
    try {
      await refreshAccount();
    } catch (err) {
      state.key = null;
      text($("key-error"), err instanceof ApiError && err.status === 401
        ? "This key was not accepted: it is unknown or revoked."
        : describeError(err));
      show($("key-error"), true);
      show($("account"), false);
      setReady(false);
      return false;
    }
    storeKey(key, $("key-remember").checked);
    show($("key-forget"), true);
    setReady(true);
    await loadHistory(true);
    return true;
  }

  async function refreshAccount() {
    const acc = await api("/api/sora-2/account");
    state.account = acc;
    text($("acc-name"), acc.name);
    text($("acc-credits"), acc.credits);
    text($("acc-active"), `${acc.activeTasks} of ${acc.maxActiveTasks}`);
    const c = acc.rateLimits.create;
    const s = acc.rateLimits.status;
    text($("acc-create"), `${c.remaining} of ${c.limit}`);
    text($("acc-status"), `${s.remaining} of ${s.limit}`);
    show($("account"), true);
    updatePrice();
  }

  function setReady(ready) {
    $("gen-submit").disabled = !ready;
    $("hist-refresh").disabled = !ready;
    text($("gen-hint"), ready ? "" : "Enter your API key first.");
  }

  // ---------- price and curl ----------
  async function loadPricing() {
    try {
      state.pricing = await api("/api/sora-2/pricing", { auth: false });
    } catch (_) {
      state.pricing = null;
    }
    updatePrice();
  }

  function request() {
    const body = {
      prompt: $("prompt").value.trim(),
      mode: radio("mode"),
      modelTier: $("tier").value,
      aspectRatio: radio("aspect"),
      videoDuration: radio("duration"),
    };
    if (body.mode === "imageToVideo") body.imageUrls = [$("image-url").value.trim()];
    return body;
  }

  function priceOf(body) {
    if (!state.pricing) return null;
    const tier = state.pricing.tiers.find((t) => t.modelTier === body.modelTier);
    return tier ? tier.credits[body.videoDuration] : null;
  }

  function updatePrice() {
    const body = request();
    const cost = priceOf(body);
    const el = $("price");
    if (cost == null) {
      text(el, state.pricing ? "" : "Prices are unavailable right now.");
      return;
    }
    let line = `Costs ${cost} credits`;
    if (state.account) {
      const left = state.account.credits - cost;
      line += left >= 0 ? ` · you have ${state.account.credits}, ${left} after this` : ` · you have ${state.account.credits}: not enough`;
      el.classList.toggle("short", left < 0);
    }
    text(el, line);
    updateCurl(body);
  }

  function shellQuote(value) {
    return `'${value.replace(/'/g, "'\\''")}'`;
  }

  function updateCurl(body) {
    const url = `${window.location.origin}/api/sora-2/generate`;
    const lines = [
      `curl -X POST ${shellQuote(url)} \\`,
      `  -H "Authorization: Bearer $REEL_API_KEY" \\`,
      `  -H "Content-Type: application/json" \\`,
      `  --data-raw ${shellQuote(JSON.stringify(body))}`,
    ];
    text($("curl"), lines.join("\n"));
  }

  // ---------- image preview ----------
  let previewTimer = null;
  function updatePreview() {
    window.clearTimeout(previewTimer);
    previewTimer = window.setTimeout(() => {
      const url = httpUrl($("image-url").value.trim());
      const fig = $("image-preview");
      if (!url || !$("image-url").value.trim()) { show(fig, false); return; }
      text($("image-preview-note"), "Loading preview…");
      $("image-preview-img").src = url;
      show(fig, true);
    }, 300);
  }

  // ---------- submit and watch ----------
  async function submit(event) {
    event.preventDefault();
    show($("gen-error"), false);
    const body = request();
    if (!body.prompt) return fail("Write a prompt first.", $("prompt"));
    if (body.mode === "imageToVideo" && !httpUrl(body.imageUrls[0] || "")) {
      return fail("Image to video needs a start image URL (http or https).", $("image-url"));
    }
    $("gen-submit").disabled = true;
    text($("gen-hint"), "Submitting…");
    try {
      const res = await api("/api/sora-2/generate", { method: "POST", body });
      text($("gen-hint"), "");
      watch(res.taskId, body.prompt);
      if (window.matchMedia("(max-width: 900px)").matches) $("viewer").scrollIntoView({ block: "start" });
      refreshAccount().catch(() => {});
      loadHistory(true).catch(() => {});
    } catch (err) {
      text($("gen-hint"), "");
      fail(describeError(err));
    } finally {
      $("gen-submit").disabled = !state.key;
    }
    return undefined;
  }

  function fail(message, focus) {
    text($("gen-error"), message);
    show($("gen-error"), true);
    if (focus) focus.focus();
  }

  function stopWatching() {
    window.clearTimeout(state.timer);
    window.clearInterval(state.tick);
    state.timer = null;
    state.tick = null;
  }

  function watch(taskId, prompt) {
    stopWatching();
    state.taskId = taskId;
    const video = $("video");
    video.pause();
    video.removeAttribute("src");
    show($("viewer-empty"), false);
    show($("viewer-body"), true);
    show($("v-done"), false);
    show($("v-failed"), false);
    show($("v-progress"), true);
    text($("v-id"), taskId);
    text($("v-prompt"), prompt || "");
    text($("v-stage"), "Submitted");
    text($("v-queue"), "");
    setBadge($("v-status"), "processing");
    setPercent(0);
    poll();
  }

  async function poll() {
    const id = state.taskId;
    try {
      const st = await api("/api/sora-2/check-status", { method: "POST", body: { taskId: id } });
      if (id !== state.taskId) return;
      render(st);
      if (st.status === "processing") state.timer = window.setTimeout(poll, POLL_MS);
      else { refreshAccount().catch(() => {}); loadHistory(true).catch(() => {}); }
    } catch (err) {
      if (id !== state.taskId) return;
      text($("v-queue"), `${describeError(err)} Retrying…`);
      state.timer = window.setTimeout(poll, POLL_MS * 2);
    }
  }

  function setPercent(p) {
    const pct = Math.max(0, Math.min(100, Number(p) || 0));
    $("v-fill").style.width = `${pct}%`;
    $("v-bar").setAttribute("aria-valuenow", String(Math.round(pct)));
  }

  function setBadge(el, status, canceled) {
    const label = canceled ? "canceled" : status;
    el.className = `badge st-${label}`;
    text(el, label);
  }

  function startClock(createdAt) {
    window.clearInterval(state.tick);
    const start = Date.parse(createdAt);
    if (Number.isNaN(start)) return;
    const update = () => text($("v-elapsed"), `${fmtSeconds(Math.max(0, (Date.now() - start) / 1000))} elapsed`);
    update();
    state.tick = window.setInterval(update, 500);
  }

  function render(st) {
    state.taskId = st.taskId;
    text($("v-id"), st.taskId);
    setBadge($("v-status"), st.status, st.canceled);
    show($("viewer-empty"), false);
    show($("viewer-body"), true);
    if (st.status === "processing") {
      show($("v-progress"), true);
      show($("v-done"), false);
      show($("v-failed"), false);
      const pct = st.progressPercent || 0;
      text($("v-stage"), `${st.progress || "queued"} · ${pct.toFixed(0)} %`);
      setPercent(pct);
      text($("v-queue"), st.queuePosition ? `Position ${st.queuePosition} in the queue` : "");
      if (!state.tick) startClock(st.createdAt);
      return;
    }
    stopWatching();
    show($("v-progress"), false);
    if (st.status === "completed") {
      const videoUrl = httpUrl(st.videoUrl || "");
      const video = $("video");
      if (videoUrl && video.getAttribute("src") !== videoUrl) {
        video.src = videoUrl;
        const thumb = httpUrl(st.thumbnailUrl || "");
        if (thumb) { video.poster = thumb; $("v-thumb").src = thumb; show($("v-thumb"), true); }
        else show($("v-thumb"), false);
        // A silent preview starts at once (browsers only autoplay muted videos); the sound
        // comes on as soon as the user presses the player (play, the timeline, a key).
        video.muted = true;
        video.play().catch(() => {});
      }
      if (videoUrl) $("v-download").href = videoUrl;
      text($("v-credits"), st.creditsUsed);
      text($("v-time"), st.generationTime != null ? `${st.generationTime} s` : "—");
      text($("v-engine"), st.engine || "—");
      show($("v-done"), true);
      show($("v-failed"), false);
    } else {
      text($("v-error"), st.error || "Video generation failed");
      text($("v-refund"), st.creditsRefunded ? `${st.creditsRefunded} credits were refunded.` : "");
      show($("v-done"), false);
      show($("v-failed"), true);
    }
  }

  async function cancel() {
    if (!state.taskId) return;
    $("v-cancel").disabled = true;
    try {
      const st = await api("/api/sora-2/cancel", { method: "POST", body: { taskId: state.taskId } });
      if (st && st.status) render(st);
      if (st && st.status === "processing") text($("v-queue"), "Cancel requested; stopping at the next step.");
    } catch (err) {
      text($("v-queue"), describeError(err));
    } finally {
      $("v-cancel").disabled = false;
    }
  }

  // ---------- history ----------
  async function loadHistory(reset) {
    if (!state.key) return;
    const params = new URLSearchParams({ limit: "10" });
    if (!reset && state.cursor) params.set("after", state.cursor);
    let page;
    try {
      page = await api(`/api/sora-2/tasks?${params}`);
    } catch (err) {
      text($("hist-empty"), describeError(err));
      show($("hist-empty"), true);
      return;
    }
    const list = $("history");
    if (reset) list.replaceChildren();
    for (const item of page.data) list.appendChild(historyItem(item));
    state.cursor = page.nextCursor;
    show($("hist-more"), page.hasMore);
    text($("hist-empty"), "No tasks yet: your first video will show up here.");
    show($("hist-empty"), list.children.length === 0);
  }

  function historyItem(st) {
    const node = $("history-item").content.firstElementChild.cloneNode(true);
    const img = node.querySelector("img");
    const thumb = httpUrl(st.thumbnailUrl || "");
    if (thumb) img.src = thumb; else img.classList.add("missing");
    text(node.querySelector(".hist-prompt"), st.prompt || st.taskId);
    setBadge(node.querySelector(".badge"), st.status, st.canceled);
    const created = st.createdAt ? new Date(st.createdAt).toLocaleString() : "";
    let detail = `${st.modelTier} · ${st.videoDuration} s · ${created}`;
    if (st.status === "completed") detail += ` · ${st.creditsUsed} credits`;
    if (st.status === "processing") detail += ` · ${st.progress || "queued"} ${Math.round(st.progressPercent || 0)} %`;
    text(node.querySelector(".hist-detail"), detail);
    const err = node.querySelector(".hist-error");
    if (st.status === "failed") {
      text(err, `${st.error || "Failed"}${st.creditsRefunded ? ` — ${st.creditsRefunded} credits refunded` : ""}`);
    } else {
      err.remove();
    }
    const open = node.querySelector(".hist-open");
    open.setAttribute("aria-label", `Show task ${st.taskId}`);
    open.addEventListener("click", () => {
      stopWatching();
      text($("v-prompt"), st.prompt || "");
      if (st.status === "processing") watch(st.taskId, st.prompt);
      else render(st);
      $("viewer").scrollIntoView({ behavior: "smooth", block: "start" });
    });
    return node;
  }

  // ---------- wiring ----------
  function init() {
    $("key-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const key = $("api-key").value.trim();
      if (key) useKey(key);
    });
    $("key-forget").addEventListener("click", () => {
      storeKey(null);
      state.key = null;
      state.account = null;
      $("api-key").value = "";
      show($("account"), false);
      show($("key-forget"), false);
      $("history").replaceChildren();
      show($("hist-more"), false);
      text($("hist-empty"), "Your tasks appear here once your key is set.");
      show($("hist-empty"), true);
      setReady(false);
      updatePrice();
    });
    $("key-remember").addEventListener("change", () => {
      if (state.key) storeKey(state.key, $("key-remember").checked);
    });
    $("gen-form").addEventListener("submit", submit);
    $("gen-form").addEventListener("input", updatePrice);
    $("gen-form").addEventListener("change", () => {
      show($("image-fields"), radio("mode") === "imageToVideo");
      updatePrice();
    });
    $("prompt").addEventListener("input", () => text($("prompt-count"), $("prompt").value.length));
    $("image-url").addEventListener("input", updatePreview);
    $("image-preview-img").addEventListener("load", () => text($("image-preview-note"), "Preview"));
    $("image-preview-img").addEventListener("error", () => text($("image-preview-note"), "This URL did not load as an image in your browser."));
    $("v-cancel").addEventListener("click", cancel);
    // Videos have sound: any press on the player (play, the timeline, a key) turns it on.
    for (const type of ["pointerdown", "keydown"]) {
      $("video").addEventListener(type, () => { $("video").muted = false; });
    }
    $("hist-refresh").addEventListener("click", () => loadHistory(true));
    $("hist-more").addEventListener("click", () => loadHistory(false));
    $("curl-copy").addEventListener("click", () => window.ReelUI.copyText($("curl"), $("curl-copied")));
    show($("image-fields"), radio("mode") === "imageToVideo");
    updatePrice();
    loadPricing();
    const stored = loadStoredKey();
    if (stored) {
      $("api-key").value = stored;
      useKey(stored);
    }
  }

  init();
})();
