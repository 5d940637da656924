// Accounts on the studio page: in oidc mode the sign-in dialog sends the browser to the
// provider (sign-up and sign-in are the provider's), and the header links the profile.
const $ = (sel) => document.querySelector(sel);

async function config() {
  try {
    const res = await fetch("/auth/config", { headers: { Accept: "application/json" } });
    return res.ok ? await res.json() : { mode: "token" };
  } catch {
    return { mode: "token" };
  }
}

// Tiny amounts (a few GPU seconds) keep their digits: $0.000014, not $0.0000.
const dollars = (n) => `$${Number(n).toFixed(n > 0 && n < 0.01 ? 6 : n < 1 ? 4 : 2)}`;

// The header: today's spend and what is left of the daily limit (refreshed while shown).
async function refreshSpend() {
  const out = $("#spend");
  if (!$("#who").textContent.trim() || document.hidden) return;
  try {
    const res = await fetch("/api/v1/account/spend", { headers: { Accept: "application/json" } });
    if (!res.ok) throw new Error(String(res.status));
    const { day } = await res.json();
    out.textContent = day.limit === null
      ? `today ${dollars(day.spent)}`
      : `today ${dollars(day.spent)} · ${dollars(day.left)} left`;
    out.dataset.left = day.left === null ? "" : String(day.left);
    out.hidden = false;
  } catch {
    out.hidden = true;
  }
}

// A refusal for want of credit (402 from the server) gets a link to buy more.
function linkCredits() {
  const err = $("#gen-error");
  if (!err) return;
  new MutationObserver(() => {
    if (err.textContent.includes("buy more credit") && !err.querySelector("a")) {
      const a = document.createElement("a");
      a.href = "/credits";
      a.textContent = " Buy credit";
      err.append(a);
    }
  }).observe(err, { childList: true, characterData: true, subtree: true });
}

// Sign-out in oidc mode ends the studio session and, when the provider offers it, the
// provider's too (RP-initiated logout): the server answers where to send the browser.
async function signOutOidc() {
  let out = null;
  try {
    const res = await fetch("/api/v1/account/session", {
      method: "DELETE",
      headers: { Accept: "application/json" },
      credentials: "same-origin",
    });
    out = res.ok ? await res.json() : null;
  } catch {
    out = null;
  }
  location.assign(out?.endSessionUrl || "/");
}

async function init() {
  linkCredits();
  const cfg = await config();
  const who = $("#who");
  const profile = $("#account-link");
  // The profile link shows once someone is signed in (app.js fills #who).
  const sync = () => {
    profile.hidden = !who.textContent.trim();
    if (profile.hidden) $("#spend").hidden = true;
    else refreshSpend();
  };
  setInterval(refreshSpend, 10000);
  document.addEventListener("visibilitychange", refreshSpend);
  // After a submission (or a refusal) the spend has changed.
  document.addEventListener("submit", () => setTimeout(refreshSpend, 500), true);

  new MutationObserver(sync).observe(who, { childList: true, characterData: true, subtree: true });
  sync();
  if (cfg.mode !== "oidc") return;
  // Before the page's own sign-out (a capture listener on the button runs first).
  $("#signout").addEventListener("click", (ev) => {
    ev.stopImmediatePropagation();
    signOutOidc();
  }, { capture: true });
  const form = $("#signin-form");
  for (const el of form.querySelectorAll("label, button[type=submit]")) el.hidden = true;
  form.querySelector("[name=token]").required = false;
  const link = $("#signin-oidc");
  const next = () => `${cfg.loginUrl}?next=${encodeURIComponent(location.pathname + location.hash)}`;
  link.href = next();
  link.hidden = false;
  window.addEventListener("hashchange", () => {
    link.href = next();
  });
}

init();
