// The profile page: who I am, my spending, my live sessions (each revocable), sign-out.
import { api, ApiError } from "./api.js";

const $ = (sel, root = document) => root.querySelector(sel);
const when = (iso) => (iso ? new Date(iso).toLocaleString() : "");
const dollars = (n) => `$${Number(n).toFixed(2)}`;
let auth = "";

function text(id, value) {
  $(id).textContent = value ?? "";
}

function sessionRow(s) {
  const tr = document.createElement("tr");
  tr.dataset.session = String(s.id);
  tr.dataset.current = String(s.current);
  for (const value of [when(s.created), when(s.lastSeen), s.address, s.userAgent]) {
    const td = document.createElement("td");
    td.textContent = value;
    tr.append(td);
  }
  const td = document.createElement("td");
  const btn = document.createElement("button");
  btn.type = "button";
  btn.textContent = s.current ? "Sign out" : "Revoke";
  btn.addEventListener("click", async () => {
    await api(`/account/sessions/${s.id}`, { method: "DELETE" }).catch(() => {});
    if (s.current) location.assign("/");
    else load();
  });
  td.append(btn);
  tr.append(td);
  return tr;
}

async function loadSpend() {
  try {
    const spend = await api("/account/spend");
    const left = (l) => (l.limit === null ? "no limit" : `${dollars(l.left)} left of ${dollars(l.limit)}`);
    text("#spend-day", `${dollars(spend.day.spent)} · ${left(spend.day)}`);
    text("#spend-month", `${dollars(spend.month.spent)} · ${left(spend.month)}`);
    $("#spending").hidden = false;
  } catch {
    $("#spending").hidden = true;
  }
}

async function loadCredits() {
  try {
    const credits = await api("/credits");
    $("#credits").hidden = !credits.enabled;
    text("#credit-balance", `${dollars(credits.balance)} left`);
  } catch {
    $("#credits").hidden = true;
  }
}

async function load() {
  const main = $("#main");
  try {
    const me = await api("/account");
    text("#who", `${me.name}${me.admin ? " · admin" : ""}`);
    text("#profile-name", me.name);
    text("#profile-email", me.email);
    text("#profile-role", me.admin ? "admin" : "user");
    text("#profile-groups", (me.groups || []).join(", "));
    text("#profile-created", when(me.created));
    text("#profile-issuer", me.issuer);
    $("#profile").hidden = false;
    $("#sessions").replaceChildren(...me.sessions.map(sessionRow));
    $("#sessions-section").hidden = me.auth !== "oidc";
    $("#account-signout").hidden = me.auth === "none" || me.auth === "proxy";
    auth = me.auth;
    await loadSpend();
    await loadCredits();
  } catch (e) {
    $("#profile").hidden = true;
    $("#sessions-section").hidden = true;
    if (e instanceof ApiError && e.status === 401) $("#account-signin").hidden = false;
    else text("#account-error", e.message);
  } finally {
    main.dataset.ready = "true";
  }
}

// oidc mode: the provider's sign-out too, where it offers one (the server names the URL).
$("#account-signout").addEventListener("click", async () => {
  if (auth === "oidc") {
    const out = await api("/account/session", { method: "DELETE" }).catch(() => null);
    location.assign(out?.endSessionUrl || "/");
    return;
  }
  await api("/session", { method: "DELETE" }).catch(() => {});
  location.assign("/");
});
load();
