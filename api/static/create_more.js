// The create page beyond the prompt: the image-to-image start (upload, preview, remove),
// what a run used (composed prompt, seed, model, cost) with "again", "again with a new
// seed" and "edit these settings", and the pool list kept live over SSE.
import { api } from "./api.js";
import { usedLabel } from "./references.js";

const $ = (sel) => document.querySelector(sel);
let shownJob = null; // the generation whose run is described

// ------------------------------------------------------------------ image-to-image start

function setReference(key) {
  $("#reference-image").value = key || "";
  const img = $("#ref-preview");
  img.hidden = !key;
  if (key) img.src = `/api/v1/uploads/preview?key=${encodeURIComponent(key)}`;
  else img.removeAttribute("src");
  $("#ref-clear").hidden = !key;
  $("#gen-form").dispatchEvent(new Event("input", { bubbles: true })); // the estimate
}

async function uploadReference(ev) {
  const file = ev.target.files[0];
  if (!file) return;
  const form = new FormData();
  form.append("file", file);
  try {
    setReference((await api("/uploads", { method: "POST", form })).key);
  } catch (e) {
    $("#gen-error").textContent = e.message;
  }
  ev.target.value = "";
}

// ------------------------------------------------------------------ what the run used

function cost(job) {
  const st = job.status;
  if (st.actualCost !== null && st.actualCost !== undefined) return `$${st.actualCost.toFixed(4)}`;
  if (st.estimatedCost !== null && st.estimatedCost !== undefined) return `≈ $${st.estimatedCost.toFixed(4)} (estimate)`;
  return "—";
}

async function describe(name) {
  const job = await api(`/generations/${encodeURIComponent(name)}`);
  shownJob = job;
  $("#run-prompt").textContent = job.composedPrompt || job.spec.prompt;
  $("#run-seed").textContent = job.status.seed ?? (job.spec.seed >= 0 ? job.spec.seed : "chosen at run time");
  $("#run-model").textContent = job.model || job.spec.model || "the preset's default";
  $("#run-cost").textContent = cost(job);
  const refs = usedLabel(job.status.references);
  $("#run-references").textContent = refs;
  $("#run-references").hidden = !refs;
  $("#run-references-label").hidden = !refs;
  $("#run-info").hidden = false;
}

// The spec of the described job as a new request (the server sets the owner).
function requestOf(job, seed) {
  const spec = { ...job.spec };
  delete spec.owner;
  for (const [k, v] of Object.entries(spec)) if (v === null) delete spec[k];
  spec.seed = seed;
  return spec;
}

function freshSeed(not) {
  const buf = new Uint32Array(2);
  let seed = not;
  while (seed === not) {
    crypto.getRandomValues(buf);
    seed = (buf[0] & 0x1fffff) * 2 ** 32 + buf[1]; // below 2^53, exact in JSON
  }
  return seed;
}

async function again(newSeed) {
  if (!shownJob) return;
  const used = shownJob.status.seed ?? shownJob.spec.seed;
  const seed = newSeed ? freshSeed(used) : used;
  $("#gen-error").textContent = "";
  try {
    const job = await api("/generations", { method: "POST", body: requestOf(shownJob, seed) });
    document.dispatchEvent(new CustomEvent("warmpool:follow", { detail: job }));
  } catch (e) {
    $("#gen-error").textContent = e.message;
  }
}

function setValue(form, name, value) {
  const el = form.elements.namedItem(name);
  if (!el) return;
  if (el instanceof RadioNodeList) {
    for (const r of el) r.checked = r.value === String(value);
  } else el.value = value ?? "";
}

// Fill the form with the described job's settings (its seed kept), ready to change.
function edit() {
  if (!shownJob) return;
  const form = $("#gen-form");
  const s = shownJob.spec;
  setValue(form, "pool", s.pool);
  form.elements.namedItem("pool").dispatchEvent(new Event("change", { bubbles: true }));
  for (const key of ["prompt", "negativePrompt", "width", "height", "steps", "cfg", "batchSize",
    "frames", "fps", "sampler", "scheduler", "priority", "denoise", "quality", "kind", "model",
    "referenceStrength"]) {
    setValue(form, key, s[key]);
  }
  setValue(form, "museRef", s.museRef || "");
  setValue(form, "seed", shownJob.status.seed ?? s.seed);
  setValue(form, "tags", (s.tags || []).join(", "));
  setValue(form, "loraName", s.lora?.name || "");
  setValue(form, "loraStrength", s.lora?.strength ?? 1);
  document.dispatchEvent(new CustomEvent("warmpool:muse-chosen", { detail: { variation: s.variation || "" } }));
  setReference(s.referenceImage || "");
  const advanced = form.querySelector("details.advanced");
  if (advanced) advanced.open = true;
  form.elements.namedItem("kind").forEach?.((r) => r.checked && r.dispatchEvent(new Event("change", { bubbles: true })));
  $("#prompt").focus();
}

// ------------------------------------------------------------------ live pools

function livePools() {
  const stream = new EventSource("/api/v1/pools/events");
  stream.addEventListener("pools", (ev) => {
    document.dispatchEvent(new CustomEvent("warmpool:pools", { detail: JSON.parse(ev.data) }));
  });
  // EventSource reconnects by itself after a drop; nothing else to do.
}

function init() {
  $("#ref-upload").addEventListener("change", uploadReference);
  $("#ref-clear").addEventListener("click", () => setReference(""));
  document.addEventListener("warmpool:result", (ev) => {
    describe(ev.detail.name).catch(() => {
      $("#run-info").hidden = true;
    });
  });
  $("#again").addEventListener("click", () => again(false));
  $("#again-seed").addEventListener("click", () => again(true));
  $("#edit-settings").addEventListener("click", edit);
  let live = false;
  document.addEventListener("warmpool:started", () => {
    if (!live) livePools();
    live = true;
  });
}

init();
