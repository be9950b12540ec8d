// Reel admin: confirmations, copy buttons, and live tables refreshed from /admin/live.
// Live values are written with textContent only.
"use strict";

(() => {
  const LIVE_MS = 3000;
  const $ = (id) => document.getElementById(id);

  // Confirm destructive forms (data-confirm="…").
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement)) return;
    const question = form.dataset.confirm;
    if (question && !window.confirm(question)) event.preventDefault();
  });

  // Copy buttons: data-copy="element id".
  for (const button of document.querySelectorAll("[data-copy]")) {
    const id = button.dataset.copy;
    button.addEventListener("click", () => {
      window.ReelUI.copyText($(id), document.querySelector(`[data-copied="${id}"]`));
    });
  }

  // ---------- live tables ----------
  const cell = (row, value, cls) => {
    const td = document.createElement("td");
    if (cls) td.className = cls;
    if (value instanceof Node) td.appendChild(value);
    else td.textContent = value == null ? "" : String(value);
    row.appendChild(td);
    return td;
  };
  const code = (value) => { const c = document.createElement("code"); c.textContent = value; return c; };
  const link = (href, child) => { const a = document.createElement("a"); a.href = href; a.appendChild(child); return a; };
  const badge = (status) => { const s = document.createElement("span"); s.className = `badge st-${status}`; s.textContent = status; return s; };
  const ago = (s) => (s < 90 ? `${Math.round(s)} s` : s < 5400 ? `${Math.round(s / 60)} min` : `${(s / 3600).toFixed(1)} h`);

  function fillActive(tasks) {
    const table = $("live-active");
    if (!table) return;
    const body = table.tBodies[0];
    const rows = tasks.map((t) => {
      const tr = document.createElement("tr");
      cell(tr, link(`/admin/tasks/${encodeURIComponent(t.id)}`, code(t.id)));
      cell(tr, t.keyName);
      cell(tr, t.prompt, "clip");
      const state = cell(tr, badge(t.status));
      state.appendChild(document.createTextNode(` ${t.stage} ${Math.round(t.percent)} %`));
      cell(tr, ago(t.ageSeconds), "num");
      return tr;
    });
    body.replaceChildren(...rows);
    const empty = $("live-active-empty");
    if (empty) empty.hidden = tasks.length > 0;
  }

  function fillModels(models) {
    const table = $("live-models");
    if (!table) return;
    table.tBodies[0].replaceChildren(...models.map((m) => {
      const tr = document.createElement("tr");
      cell(tr, m.name);
      cell(tr, m.engine);
      cell(tr, m.queued, "num");
      cell(tr, m.running, "num");
      cell(tr, m.workers, "num");
      return tr;
    }));
    const set = (id, v) => { const el = $(id); if (el) el.textContent = String(v); };
    set("tile-queued", models.reduce((n, m) => n + m.queued, 0));
    set("tile-running", models.reduce((n, m) => n + m.running, 0));
  }

  function fillWorkers(workers) {
    const set = (id, v) => { const el = $(id); if (el) el.textContent = String(v); };
    set("tile-workers", workers.filter((w) => w.alive).length);
    const table = $("live-workers");
    if (!table) return;
    table.tBodies[0].replaceChildren(...workers.map((w) => {
      const tr = document.createElement("tr");
      if (!w.alive) tr.className = "dim";
      cell(tr, code(w.id));
      cell(tr, `${w.host} · ${w.pid}`);
      cell(tr, w.models.join(", "));
      const state = document.createElement("span");
      state.className = `badge ${w.alive ? "st-completed" : "st-failed"}`;
      state.textContent = w.alive ? "alive" : "silent";
      cell(tr, state);
      cell(tr, w.currentTask ? link(`/admin/tasks/${encodeURIComponent(w.currentTask)}`, code(w.currentTask)) : "idle");
      cell(tr, `${ago(w.lastSeenSeconds)} ago`, "num");
      return tr;
    }));
    const empty = $("live-workers-empty");
    if (empty) empty.hidden = workers.length > 0;
  }

  async function refresh() {
    const stamp = $("live-at");
    try {
      const res = await fetch("/admin/live", { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (res.status === 401) {
        if (stamp) stamp.textContent = "signed out — reload to sign in";
        return;
      }
      if (!res.ok) throw new Error(String(res.status));
      const data = await res.json();
      fillActive(data.active);
      fillModels(data.models);
      fillWorkers(data.workers);
      if (stamp) stamp.textContent = `live · updated ${new Date(data.at * 1000).toLocaleTimeString()}`;
    } catch (_) {
      if (stamp) stamp.textContent = "live updates paused: server unreachable";
    }
    window.setTimeout(refresh, LIVE_MS);
  }

  if (document.querySelector("[data-live]")) window.setTimeout(refresh, LIVE_MS);
})();
