// The console's spending limits (in the Usage view): the defaults, every override with the
// user's spend, and a form to set one. Built with textContent only (names are user input).
import { api } from "/api.js";

const $ = (sel) => document.querySelector(sel);
const money = (v) => (v === null || v === undefined ? "no limit" : `$${Number(v).toFixed(2)}`);
const spent = (w) => `$${Number(w.spent).toFixed(4)}${w.limit === null ? "" : ` of ${money(w.limit)}`}`;

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text;
  return td;
}

function flash(text, error = false) {
  const f = $("#flash");
  f.textContent = text;
  f.className = error ? "flash error" : "flash";
}

async function loadLimits() {
  const out = await api("/admin/limits");
  $("#limits-defaults").textContent = `· default ${money(out.defaultDaily)} a day, ${money(out.defaultMonthly)} a month`;
  $("#limits tbody").replaceChildren(...out.overrides.map((o) => {
    const tr = document.createElement("tr");
    tr.dataset.owner = o.owner;
    const reset = document.createElement("button");
    reset.type = "button";
    reset.textContent = "Default";
    reset.addEventListener("click", async () => {
      await api(`/admin/limits/${encodeURIComponent(o.owner)}`, { method: "DELETE" }).catch((e) => flash(e.message, true));
      await loadLimits();
    });
    const last = document.createElement("td");
    last.append(reset);
    tr.append(cell(o.owner), cell(money(o.daily)), cell(money(o.monthly)), cell(spent(o.spend.day)),
      cell(spent(o.spend.month)), cell(o.updatedBy), last);
    return tr;
  }));
}

function number(value) {
  return value === "" || value === null ? null : Number(value);
}

$("#limits-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const data = new FormData(ev.target);
  const owner = String(data.get("owner")).trim();
  try {
    await api(`/admin/limits/${encodeURIComponent(owner)}`, {
      method: "PUT", body: { daily: number(data.get("daily")), monthly: number(data.get("monthly")) },
    });
    flash(`limits of ${owner}: set`);
    await loadLimits();
  } catch (e) {
    flash(`limits of ${owner}: ${e.message}`, true);
  }
});

document.querySelector('[data-view="usage"]').addEventListener("click", () => loadLimits().catch((e) => flash(e.message, true)));
