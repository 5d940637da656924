// The admin console: fleet (live over SSE), actions, jobs, audit viewer, usage chart.
// Everything is built with textContent (never innerHTML): object names are user input.
import { api, qs } from "/api.js";

const $ = (sel) => document.querySelector(sel);
const TERMINAL = new Set(["Succeeded", "Failed", "Cancelled"]);
const GOOD_WHEN_TRUE = new Set(["Ready", "RentalsHealthy"]);
const INFO = new Set(["ScalingUp", "Progressing"]);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v;
    else if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

function flash(text, error = false) {
  const f = $("#flash");
  f.textContent = text;
  f.className = error ? "flash error" : "flash";
}

function money(v, digits = 3) { return v === null || v === undefined ? "—" : `$${Number(v).toFixed(digits)}`; }
function age(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  if (seconds < 120) return `${Math.round(seconds)}s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m`;
  return `${(seconds / 3600).toFixed(1)}h`;
}

// ---------------------------------------------------------------- confirmation

function confirmAction(text) {
  const dialog = $("#confirm");
  $("#confirm-text").textContent = text;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
  });
}

async function act(label, call, confirmText) {
  if (confirmText && !(await confirmAction(confirmText))) return;
  try {
    const out = await call();
    flash(`${label}: done`);
    return out;
  } catch (e) {
    flash(`${label}: ${e.message}`, true);
  }
}

// ---------------------------------------------------------------- fleet

function poolRow(p) {
  const replicas = el("input", { type: "number", min: 0, max: 500, value: p.desired, "aria-label": `desired replicas of ${p.name}`, "data-field": "replicas" });
  const hourly = el("input", { type: "number", min: 0, step: "0.01", value: p.maxHourlySpend ?? "", "aria-label": `max $/hour of ${p.name}`, "data-field": "hourly" });
  const daily = el("input", { type: "number", min: 0, step: "0.01", value: p.maxDailySpend ?? "", "aria-label": `max $/day of ${p.name}`, "data-field": "daily" });
  const path = `/admin/pools/${encodeURIComponent(p.name)}`;
  const num = (input) => (input.value === "" ? null : Number(input.value));
  const conditions = el("td");
  for (const c of p.conditions) {
    const bad = GOOD_WHEN_TRUE.has(c.type) ? c.status !== "True" : !INFO.has(c.type) && c.status === "True";
    conditions.append(el("span", { class: bad ? "cond bad" : "cond", text: `${c.type}=${c.status}${c.reason ? ` (${c.reason})` : ""}${c.message ? `: ${c.message}` : ""}` }));
  }
  const actions = el("td", {},
    replicas,
    el("button", { type: "button", "data-act": "scale", text: "Scale", onclick: () => {
      const n = Number(replicas.value);
      const down = n < p.desired;
      act(`scale ${p.name}`, () => api(`${path}/scale`, { method: "POST", body: { replicas: n } }),
        down ? `Scale pool ${p.name} down from ${p.desired} to ${n}? Instances will be released.` : null);
    } }),
    p.paused
      ? el("button", { type: "button", "data-act": "resume", text: "Resume", onclick: () =>
          act(`resume ${p.name}`, () => api(`${path}/pause`, { method: "POST", body: { paused: false } })) })
      : el("button", { type: "button", "data-act": "pause", class: "danger", text: "Pause", onclick: () =>
          act(`pause ${p.name}`, () => api(`${path}/pause`, { method: "POST", body: { paused: true } }),
            `Pause pool ${p.name} (safe mode)? No new rentals; queued jobs wait.`) }),
    el("button", { type: "button", "data-act": "prewarm", text: "Prewarm +1", onclick: () =>
      act(`prewarm ${p.name}`, () => api(`${path}/prewarm`, { method: "POST", body: { count: 1 } })) }),
    el("br"), hourly, daily,
    el("button", { type: "button", "data-act": "budget", text: "Set budget", onclick: () =>
      act(`budget ${p.name}`, () => api(`${path}/budget`, { method: "POST", body: { maxHourlySpend: num(hourly), maxDailySpend: num(daily) } })) }),
  );
  const budget = `${money(p.spendToday, 2)} / ${p.maxDailySpend === null ? "no limit" : money(p.maxDailySpend, 2)}`;
  const name = el("td", {}, el("strong", { text: p.name }), p.paused ? el("span", { class: "cond bad", text: "paused" }) : "");
  if (p.lastAdmin) name.append(el("span", { class: "muted cond", text: `${p.lastAdminAction} by ${p.lastAdmin}` }));
  return el("tr", { "data-pool": p.name, "data-paused": String(p.paused) },
    name, el("td", { text: p.desired }), el("td", { text: p.ready }), el("td", { text: p.queued }),
    el("td", { text: p.running }), el("td", { text: money(p.pricePerHour) }), el("td", { text: budget }),
    conditions, actions);
}

function instanceRow(i) {
  const steps = i.steps.filter((s) => s.at).map((s) => `${s.step}${s.seconds !== null ? ` +${s.seconds}s` : ""}`).join(" → ");
  return el("tr", { "data-instance": i.name },
    el("td", { text: i.name }), el("td", { text: i.pool }), el("td", { text: i.phase }), el("td", { text: i.gpu || "—" }),
    el("td", { text: money(i.pricePerHour) }), el("td", { text: age(i.ageSeconds) }), el("td", { text: i.contract ?? "—" }),
    el("td", { text: i.lastProbe || "—" }), el("td", { text: i.statusMessage || "" }), el("td", { text: steps || "—" }),
    el("td", {}, el("button", { type: "button", class: "danger", "data-act": "terminate", text: "Terminate", onclick: () =>
      act(`terminate ${i.name}`, () => api(`/admin/instances/${encodeURIComponent(i.name)}`, { method: "DELETE" }),
        `Terminate ${i.name}${i.contract ? ` (contract ${i.contract})` : ""}? The rental is destroyed; its jobs are retried elsewhere.`) })));
}

function renderFleet(fleet) {
  $("#pools tbody").replaceChildren(...fleet.pools.map(poolRow));
  $("#instances tbody").replaceChildren(...(fleet.instances.length ? fleet.instances.map(instanceRow)
    : [el("tr", {}, el("td", { colspan: 11, class: "muted", text: "no instances" }))]));
  $("#fleet-live").textContent = `live · ${fleet.at}`;
}

function liveFleet() {
  const source = new EventSource("/api/v1/admin/fleet/events");
  source.addEventListener("fleet", (ev) => renderFleet(JSON.parse(ev.data)));
  source.onerror = () => { $("#fleet-live").textContent = "reconnecting…"; };
}

// ---------------------------------------------------------------- jobs

async function loadJobs() {
  const page = await api(`/generations${qs({ all: true, limit: 200 })}`);
  const rows = page.items.filter((j) => !TERMINAL.has(j.phase)).map((j) => el("tr", { "data-job": j.name },
    el("td", { text: j.name }), el("td", { text: j.owner }), el("td", { text: j.spec.pool }),
    el("td", { text: j.phase }), el("td", { text: j.created || "" }),
    el("td", {}, el("button", { type: "button", class: "danger", "data-act": "cancel", text: "Cancel", onclick: async () => {
      await act(`cancel ${j.name}`, () => api(`/admin/jobs/${encodeURIComponent(j.name)}`, { method: "DELETE" }),
        `Cancel ${j.owner}'s job ${j.name}?`);
      loadJobs();
    } }))));
  $("#jobs tbody").replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: 6, class: "muted", text: "no unfinished jobs" }))]));
}

// ---------------------------------------------------------------- audit

const audit = { offset: 0, limit: 50, filter: {} };

function auditQuery() {
  const f = {};
  for (const [k, v] of new FormData($("#audit-filter")).entries()) {
    if (!v) continue;
    f[k] = (k === "since" || k === "until") ? new Date(`${v}Z`).toISOString() : v;
  }
  return f;
}

async function loadAudit() {
  const page = await api(`/admin/audit${qs({ ...audit.filter, offset: audit.offset, limit: audit.limit })}`);
  $("#audit tbody").replaceChildren(...page.items.map((r) => el("tr", { "data-audit": r.id, "data-action": r.action },
    el("td", { text: r.at }), el("td", { class: "actor", text: r.actor }), el("td", { class: "action", text: r.action }),
    el("td", { text: r.objectKind ? `${r.objectKind}/${r.objectName}` : r.objectName }),
    el("td", { class: "address", text: r.address || "—" }),
    el("td", { class: r.outcome === "ok" ? "ok" : "bad", text: r.outcome }),
    el("td", {}, el("pre", { class: "detail", text: JSON.stringify(r.detail) })))));
  const last = Math.min(page.offset + page.limit, page.total);
  $("#audit-pos").textContent = page.total ? `${page.offset + 1}–${last} of ${page.total}` : "no records";
  $("#audit-prev").disabled = page.offset === 0;
  $("#audit-next").disabled = page.nextOffset === null;
  $("#audit-csv").href = `/api/v1/admin/audit.csv${qs(audit.filter)}`;
}

async function verifyAudit() {
  const v = await api("/admin/audit/verify", { method: "POST" });
  const out = $("#audit-verdict");
  out.className = v.ok ? "ok" : "bad";
  out.textContent = v.ok
    ? `chain intact: ${v.checked} records${v.anchored ? " (from the retention anchor)" : ""}; head ${v.head.slice(0, 16)}…`
    : `chain BROKEN at record ${v.recordId}: ${v.problem}`;
}

// ---------------------------------------------------------------- usage

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function chart(rows) {
  const byDay = new Map();
  for (const r of rows) byDay.set(r.day, (byDay.get(r.day) || 0) + r.cost);
  const days = [...byDay.keys()].sort();
  const box = $("#usage-chart");
  box.replaceChildren();
  if (!days.length) { box.append(svg("text", { x: 20, y: 110 }, "no finished jobs in this period")); return; }
  const max = Math.max(...byDay.values(), 0.0001);
  const width = Math.min(60, 680 / days.length);
  days.forEach((day, i) => {
    const h = (byDay.get(day) / max) * 170;
    const x = 30 + i * width;
    const bar = svg("rect", { x: x + 2, y: 190 - h, width: Math.max(2, width - 4), height: h, "data-day": day });
    bar.append(svg("title", {}, `${day}: $${byDay.get(day).toFixed(4)}`));
    box.append(bar, svg("text", { x: x + 2, y: 205 }, day.slice(5)));
  });
  box.append(svg("text", { x: 2, y: 20 }, `$${max.toFixed(max < 1 ? 4 : 2)}`), svg("text", { x: 2, y: 190 }, "$0"));
}

async function loadUsage() {
  const out = await api("/admin/usage");
  $("#usage tbody").replaceChildren(...out.rows.map((r) => el("tr", {},
    el("td", { text: r.day }), el("td", { text: r.owner }), el("td", { text: r.pool }), el("td", { text: r.jobs }),
    el("td", { text: r.seconds.toFixed(1) }), el("td", { text: r.cost.toFixed(4) }))));
  $("#usage-total").textContent = `· total ${money(out.totalCost, out.totalCost < 1 ? 4 : 2)}`;
  chart(out.rows);
}

// ---------------------------------------------------------------- views

const loaders = { fleet: async () => {}, jobs: loadJobs, audit: loadAudit, usage: loadUsage };

function show(view) {
  for (const b of document.querySelectorAll("[data-view]")) {
    if (b.dataset.view === view) b.setAttribute("aria-current", "page");
    else b.removeAttribute("aria-current");
  }
  for (const s of document.querySelectorAll("section.view")) s.hidden = s.id !== `view-${view}`;
  loaders[view]().catch((e) => flash(e.message, true));
}

async function main() {
  const me = await api("/me");
  $("#who").textContent = `${me.name} · admin`;
  for (const b of document.querySelectorAll("[data-view]")) b.addEventListener("click", () => show(b.dataset.view));
  $("#jobs-refresh").addEventListener("click", () => loadJobs().catch((e) => flash(e.message, true)));
  $("#audit-filter").addEventListener("submit", (ev) => {
    ev.preventDefault();
    audit.filter = auditQuery();
    audit.offset = 0;
    loadAudit().catch((e) => flash(e.message, true));
  });
  $("#audit-prev").addEventListener("click", () => { audit.offset = Math.max(0, audit.offset - audit.limit); loadAudit(); });
  $("#audit-next").addEventListener("click", () => { audit.offset += audit.limit; loadAudit(); });
  $("#audit-verify").addEventListener("click", () => verifyAudit().catch((e) => flash(e.message, true)));
  renderFleet(await api("/admin/fleet"));
  liveFleet();
  document.body.dataset.ready = "true";
}

main().catch((e) => flash(e.message, true));
