// The studio page: create, muses, gallery. Plain ES modules, no build step.
import { api, ApiError, qs } from "./api.js";
import { initMuses, loadMuses } from "./muses.js";
import { initGallery, loadGallery, openLightbox } from "./gallery.js";

const $ = (sel, root = document) => root.querySelector(sel);
const state = { muses: [], pools: [], current: null, stream: null, history: [] };

// ------------------------------------------------------------------ views

function show(view) {
  for (const btn of document.querySelectorAll(".tabs button")) {
    if (btn.dataset.view === view) btn.setAttribute("aria-current", "page");
    else btn.removeAttribute("aria-current");
  }
  for (const sec of document.querySelectorAll(".view")) sec.hidden = sec.id !== `view-${view}`;
  if (view === "gallery") loadGallery().catch(() => {});
  if (view === "muses") loadMuses().catch(() => {});
  history.replaceState(null, "", `#${view}`);
}

// ------------------------------------------------------------------ create form

function request() {
  const form = $("#gen-form");
  const data = new FormData(form);
  const num = (k) => (data.get(k) === "" || data.get(k) === null ? undefined : Number(data.get(k)));
  const kind = data.get("kind");
  const body = {
    pool: data.get("pool") || "",
    prompt: data.get("prompt") || "",
    negativePrompt: data.get("negativePrompt") || "",
    quality: data.get("quality"),
    kind,
    museRef: data.get("museRef") || undefined,
    model: data.get("model") || undefined,
    width: num("width"),
    height: num("height"),
    steps: num("steps"),
    cfg: num("cfg"),
    seed: num("seed") ?? -1,
    batchSize: num("batchSize") ?? 1,
    frames: kind === "image" ? undefined : num("frames"),
    tags: (data.get("tags") || "").split(",").map((t) => t.trim()).filter(Boolean),
    sampler: data.get("sampler") || undefined,
    scheduler: data.get("scheduler") || undefined,
    lora: data.get("loraName") ? { name: data.get("loraName"), strength: num("loraStrength") ?? 1 } : undefined,
    fps: kind === "image" ? undefined : num("fps"),
    priority: num("priority") ?? 0,
    referenceImage: data.get("referenceImage") || undefined,
    variation: data.get("variation") || undefined,
  };
  if (body.referenceImage) body.denoise = num("denoise");
  if (body.museRef) body.referenceStrength = num("referenceStrength");
  return body;
}

let estimateTimer = null;
let estimateAbort = null;
function scheduleEstimate() {
  clearTimeout(estimateTimer);
  estimateTimer = setTimeout(updateEstimate, 250);
}

async function updateEstimate() {
  const body = request();
  const out = $("#estimate");
  if (!body.prompt.trim() || !body.pool) {
    out.textContent = "Write a prompt to see the price.";
    document.dispatchEvent(new CustomEvent("warmpool:estimate-cleared"));
    return;
  }
  estimateAbort?.abort();
  estimateAbort = new AbortController();
  try {
    const est = await api("/estimate", { method: "POST", body, signal: estimateAbort.signal });
    const wait = est.waitSeconds > 0 ? `wait ≈ ${formatSeconds(est.waitSeconds)} (${est.waitReason}) + ` : "";
    const notes = est.notes?.length ? ` · ${est.notes.join(" · ")}` : "";
    out.textContent = `${wait}≈ ${formatSeconds(est.seconds)} · $${est.dollars.toFixed(4)} at $${est.pricePerHour.toFixed(2)}/h${notes}`;
    out.title = est.waitReason;
    out.dataset.dollars = est.dollars;
    document.dispatchEvent(new CustomEvent("warmpool:estimate", { detail: est }));
  } catch (e) {
    if (e.name !== "AbortError") {
      out.textContent = e.message;
      document.dispatchEvent(new CustomEvent("warmpool:estimate-cleared"));
    }
  }
}

function formatSeconds(s) {
  return s < 90 ? `${Math.round(s)} s` : `${Math.round(s / 60)} min`;
}

async function generate(ev) {
  ev?.preventDefault();
  const btn = $("#generate");
  $("#gen-error").textContent = "";
  btn.disabled = true;
  try {
    const job = await api("/generations", { method: "POST", body: request() });
    follow(job);
  } catch (e) {
    $("#gen-error").textContent = e instanceof ApiError ? e.message : String(e);
  } finally {
    btn.disabled = false;
  }
}

// ------------------------------------------------------------------ progress (SSE)

function setProgress(phase, percent) {
  $("#phase").textContent = phase;
  $("#percent").textContent = `${percent}%`;
  const bar = $("#progress");
  bar.setAttribute("aria-valuenow", String(percent));
  $(".bar", bar).style.width = `${percent}%`;
  $("#cancel").hidden = ["Succeeded", "Failed", "Cancelled"].includes(phase);
}

function follow(job) {
  state.stream?.close();
  state.current = job.name;
  $("#progress-wrap").hidden = false;
  setProgress(job.phase, job.percent);
  const stream = new EventSource(job.eventsUrl);
  state.stream = stream;
  stream.addEventListener("progress", (ev) => {
    const snap = JSON.parse(ev.data);
    setProgress(snap.phase, snap.phase === "Succeeded" ? 100 : snap.percent);
    if (snap.phase === "Succeeded" && snap.outputs.length) showResult(snap.name, snap.outputs);
    if (snap.phase === "Failed") $("#gen-error").textContent = snap.message || "The generation failed.";
  });
  stream.addEventListener("done", () => {
    stream.close();
    loadHistory();
  });
  stream.onerror = () => {
    if (stream.readyState === EventSource.CLOSED) loadHistory();
  };
}

const isVideo = (o) => o.contentType.startsWith("video/");
const isImage = (o) => o.contentType.startsWith("image/");

// A video job stores an MP4 and a PNG poster (its first frame): play the one, show the other.
function videoElement(video, poster, id) {
  const el = document.createElement("video");
  el.src = `${video.url}?disposition=inline`;
  if (poster) el.poster = `${poster.url}?disposition=inline`;
  Object.assign(el, { controls: true, loop: true, muted: true, playsInline: true, id });
  el.preload = "metadata";
  return el;
}

function showResult(name, outputs) {
  const fig = $("#result");
  fig.replaceChildren();
  const video = outputs.find(isVideo);
  if (video) {
    const cap = document.createElement("figcaption");
    const a = document.createElement("a");
    Object.assign(a, { href: video.url, className: "primary button", id: "download" });
    a.setAttribute("download", "");
    a.textContent = "Download MP4";
    cap.append(a);
    fig.append(videoElement(video, outputs.find(isImage), "result-video"), cap);
    document.dispatchEvent(new CustomEvent("warmpool:result", { detail: { name } }));
    return;
  }
  const out = outputs[0];
  const media = document.createElement("img");
  media.src = `${out.url}?disposition=inline`;
  media.alt = $("#prompt").value || name;
  media.id = "result-image";
  const cap = document.createElement("figcaption");
  for (const o of outputs) {
    const a = document.createElement("a");
    a.href = o.url;
    a.className = "primary button";
    a.id = o.index === 0 ? "download" : "";
    a.setAttribute("download", "");
    a.textContent = outputs.length > 1 ? `Download ${o.index + 1}` : "Download";
    cap.append(a);
  }
  fig.append(media, cap);
  document.dispatchEvent(new CustomEvent("warmpool:result", { detail: { name } }));
}

async function loadHistory() {
  try {
    const page = await api(`/generations${qs({ limit: 12 })}`);
    const list = $("#history");
    list.replaceChildren();
    for (const job of page.items) {
      const li = document.createElement("li");
      const btn = document.createElement("button");
      btn.type = "button";
      btn.title = `${job.phase}: ${job.spec.prompt}`;
      if (job.outputs.length) {
        const img = document.createElement("img");
        img.src = (job.outputs.find(isImage) || job.outputs[0]).thumbnailUrl;
        img.alt = job.spec.prompt;
        img.loading = "lazy";
        btn.append(img);
        btn.addEventListener("click", () => showResult(job.name, job.outputs));
      } else {
        btn.textContent = job.phase;
        btn.addEventListener("click", () => follow(job));
      }
      li.append(btn);
      list.append(li);
    }
  } catch {
    /* the history is a nicety */
  }
}

// ------------------------------------------------------------------ choices

function fillModels() {
  const pool = state.pools.find((p) => p.name === $("#pool").value);
  const select = $("#model");
  const keep = select.value;
  select.replaceChildren(new Option("Preset default", ""));
  for (const m of pool?.models || []) select.append(new Option(m, m));
  select.value = keep && [...select.options].some((o) => o.value === keep) ? keep : "";
  $("#loras").replaceChildren(...(pool?.loras || []).map((l) => new Option(l, l)));
  showDefaults();
}

// What the operator runs "Preset default" as on a pool that names none (the pools list's
// defaultModel: its first declared checkpoint; workflows.DEFAULT_CHECKPOINT otherwise).
const DEFAULT_CHECKPOINT = "sd_xl_base_1.0.safetensors";

// The chosen checkpoint's architecture defaults as placeholders (the pools list's
// checkpoints): Flux shows euler/simple and its guidance, and says the negative is unused.
function showDefaults() {
  const form = $("#gen-form");
  const pool = state.pools.find((p) => p.name === $("#pool").value);
  const name = $("#model").value || pool?.defaultModel || DEFAULT_CHECKPOINT;
  const ckpt = (pool?.checkpoints || []).find((c) => c.name === name);
  const quality = form.querySelector("[name=quality]:checked")?.value || "medium";
  const preset = ckpt?.presets?.[quality];
  for (const field of ["steps", "cfg", "sampler", "scheduler"]) {
    form.elements[field].placeholder = preset ? String(preset[field]) : "preset";
  }
  const cfgLabel = form.elements.cfg.parentElement.firstChild;
  cfgLabel.textContent = `${ckpt ? ckpt.cfgLabel || "CFG (not used)" : "CFG"} `;
  $("#negative").placeholder = ckpt && !ckpt.negativePrompt
    ? `not used by ${ckpt.architecture} (ignored)` : "blurry, low quality";
}

async function loadChoices() {
  const [pools, muses] = await Promise.all([api("/pools"), api(`/muses${qs({ limit: 200 })}`)]);
  state.muses = muses.items;
  applyPools(pools);
  refreshMuseOptions();
}

// The pool list, first loaded, then kept live by the pools stream (create_more.js).
function applyPools(pools) {
  state.pools = pools;
  const poolSel = $("#pool");
  const keep = poolSel.value;
  poolSel.replaceChildren();
  for (const p of pools) {
    const label = `${p.name} · ${p.ready ? "ready" : p.paused ? "paused" : "warming"} · ${p.queuedJobs} queued · $${p.pricePerHour.toFixed(2)}/h`;
    poolSel.append(new Option(label, p.name));
  }
  if (keep) poolSel.value = keep;
  fillModels();
}

export function refreshMuseOptions(muses = state.muses) {
  state.muses = muses;
  document.dispatchEvent(new CustomEvent("warmpool:muses", { detail: muses }));
  for (const select of [$("#muse"), $("#gallery-filters [name=muse]")]) {
    const keep = select.value;
    select.replaceChildren(new Option(select.id === "muse" ? "No muse" : "Any", ""));
    for (const m of muses) select.append(new Option(m.spec.displayName, m.name));
    select.value = [...select.options].some((o) => o.value === keep) ? keep : "";
  }
}

// ------------------------------------------------------------------ sign-in

function initSignin() {
  const dialog = $("#signin");
  document.addEventListener("warmpool:signin", () => {
    if (!dialog.open) dialog.showModal();
  });
  $("#signin-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const token = new FormData(ev.target).get("token");
    try {
      await api("/session", { method: "POST", body: { token } });
      dialog.close();
      await start();
    } catch (e) {
      $("#signin-error").textContent = e.message;
    }
  });
  // Token mode: the server revokes the session; proxy mode: oauth2-proxy's sign-out.
  $("#signout").addEventListener("click", async () => {
    if (state.auth === "proxy") {
      window.location.assign("/oauth2/sign_out");
      return;
    }
    await api("/session", { method: "DELETE" });
    $("#who").textContent = "";
    $("#signout").hidden = true;
    document.dispatchEvent(new CustomEvent("warmpool:signin"));
  });
}

// ------------------------------------------------------------------ start

async function start() {
  const me = await api("/me");
  $("#who").textContent = `${me.name}${me.admin ? " · admin" : ""}`;
  $("#admin-link").hidden = !me.admin;
  state.auth = me.auth;
  $("#signout").hidden = me.auth === "none";
  await loadChoices();
  await loadHistory();
  updateEstimate();
  document.dispatchEvent(new CustomEvent("warmpool:started"));
}

function init() {
  for (const btn of document.querySelectorAll(".tabs button")) {
    btn.addEventListener("click", () => show(btn.dataset.view));
  }
  const form = $("#gen-form");
  form.addEventListener("submit", generate);
  form.addEventListener("input", scheduleEstimate);
  form.addEventListener("change", (ev) => {
    if (ev.target.id === "pool") fillModels();
    if (ev.target.id === "model" || ev.target.name === "quality") showDefaults();
    if (ev.target.name === "kind") {
      for (const el of document.querySelectorAll(".video-only")) el.hidden = ev.target.value === "image";
    }
    scheduleEstimate();
  });
  for (const el of document.querySelectorAll(".video-only")) el.hidden = true;
  form.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) generate(ev);
  });
  $("#cancel").addEventListener("click", async () => {
    if (state.current) await api(`/generations/${encodeURIComponent(state.current)}`, { method: "DELETE" }).catch(() => {});
  });
  $("#result").addEventListener("click", (ev) => {
    if (ev.target.tagName === "IMG") openLightbox([{ url: ev.target.src.split("?")[0], prompt: ev.target.alt }], 0);
  });
  initSignin();
  // create_more.js submits "again" and asks to follow the new job here.
  document.addEventListener("warmpool:follow", (ev) => follow(ev.detail));
  document.addEventListener("warmpool:pools", (ev) => applyPools(ev.detail));
  initMuses({ onChange: refreshMuseOptions });
  initGallery();
  const view = location.hash.slice(1);
  show(["create", "muses", "gallery"].includes(view) ? view : "create");
  start().catch((e) => {
    $("#gen-error").textContent = e.message;
  });
}

init();
