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

async function init() {
  const cfg = await config();
  const who = $("#who");
  const profile = $("#account-link");
  // The profile link shows once someone is signed in (app.js fills #who).
  const sync = () => {
    profile.hidden = !who.textContent.trim();
  };
  new MutationObserver(sync).observe(who, { childList: true, characterData: true, subtree: true });
  sync();
  if (cfg.mode !== "oidc") return;
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
