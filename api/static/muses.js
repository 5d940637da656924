// The muse editor: attribute groups, reference uploads, import/export.
import { api, qs } from "./api.js";
import { buildTraitFields, fillTraits, fillVariations, traitsOf, variationsOf } from "./muse_more.js";

const $ = (sel, root = document) => root.querySelector(sel);
let muses = [];
let editing = null; // name of the muse in the editor, or null for a new one
let refs = [];
let notify = () => {};
let history = {}; // muse name → {generations, outputs, latest}

function setField(form, name, value) {
  const el = form.elements.namedItem(name);
  if (el) el.value = value ?? "";
}

function fillForm(muse) {
  const form = $("#muse-form");
  form.reset();
  editing = muse?.name ?? null;
  const spec = muse?.spec ?? { age: 30, appearance: {} };
  for (const key of ["displayName", "age", "style", "personality", "promptTemplate", "negativePrompt", "preferredModel", "referenceStrength", "notes"]) {
    setField(form, key, spec[key]);
  }
  for (const [key, value] of Object.entries(spec.appearance || {})) setField(form, `appearance.${key}`, value);
  setField(form, "tags", (spec.tags || []).join(", "));
  fillTraits(form, spec.traits || {});
  fillVariations(spec.variations || []);
  refs = [...(spec.referenceImages || [])];
  renderRefs();
  $("#muse-form-title").textContent = muse ? `Edit ${spec.displayName}` : "New muse";
  $("#muse-delete").hidden = !muse;
  $("#muse-error").textContent = "";
}

function renderRefs() {
  const list = $("#muse-refs");
  list.replaceChildren();
  refs.forEach((key, i) => {
    const li = document.createElement("li");
    const img = document.createElement("img");
    img.src = `/api/v1/uploads/preview?key=${encodeURIComponent(key)}`;
    img.alt = `Reference image ${i + 1}`;
    li.append(img);
    const rm = document.createElement("button");
    rm.type = "button";
    rm.className = "ghost";
    rm.textContent = "×";
    rm.setAttribute("aria-label", `Remove reference image ${i + 1}`);
    rm.addEventListener("click", () => {
      refs.splice(i, 1);
      renderRefs();
    });
    li.append(rm);
    list.append(li);
  });
}

function specOf(form) {
  const data = new FormData(form);
  const text = (k) => String(data.get(k) ?? "").trim();
  const spec = { displayName: text("displayName"), age: Number(data.get("age")), appearance: {} };
  for (const key of ["style", "personality", "promptTemplate", "negativePrompt", "notes"]) spec[key] = text(key);
  if (text("preferredModel")) spec.preferredModel = text("preferredModel");
  if (text("referenceStrength")) spec.referenceStrength = Number(text("referenceStrength"));
  for (const [key, value] of data.entries()) {
    if (key.startsWith("appearance.")) spec.appearance[key.slice(11)] = String(value).trim();
  }
  spec.tags = text("tags").split(",").map((t) => t.trim()).filter(Boolean);
  spec.referenceImages = refs;
  spec.traits = traitsOf(form);
  spec.variations = variationsOf();
  return spec;
}

function matchesSearch(m) {
  const words = ($("#muse-search")?.value || "").toLowerCase().split(/\s+/).filter(Boolean);
  const text = [m.spec.displayName, m.name, ...(m.spec.tags || [])].join(" ").toLowerCase();
  return words.every((w) => text.includes(w));
}

function renderCards() {
  const list = $("#muse-cards");
  list.replaceChildren();
  for (const m of muses.filter(matchesSearch)) {
    const li = document.createElement("li");
    const btn = document.createElement("button");
    btn.type = "button";
    btn.className = "ghost";
    btn.dataset.muse = m.name;
    btn.innerHTML = "<span></span><small></small>";
    btn.firstChild.textContent = m.spec.displayName;
    btn.lastChild.textContent = `${m.spec.age} · ${m.spec.style || "no style"}`;
    btn.addEventListener("click", () => fillForm(m));
    const h = history[m.name];
    const meta = document.createElement("div");
    meta.className = "history";
    if (h?.latest) {
      const img = document.createElement("img");
      img.src = h.latest.thumbnailUrl;
      img.alt = `Latest: ${h.latest.prompt}`;
      meta.append(img);
    }
    const count = document.createElement("span");
    count.textContent = h
      ? `${h.generations} generation${h.generations === 1 ? "" : "s"}, ${h.outputs} output${h.outputs === 1 ? "" : "s"}`
      : "no generations yet";
    if (m.jobs) count.textContent += ` · ${m.jobs} jobs run`;
    meta.append(count);
    btn.append(meta);
    li.append(btn);
    list.append(li);
  }
}

export async function loadMuses() {
  await buildTraitFields();
  const [page, done] = await Promise.all([api(`/muses${qs({ limit: 200 })}`), api("/muses/history")]);
  muses = page.items;
  history = done;
  renderCards();
  notify(muses);
}

async function save(ev) {
  ev.preventDefault();
  const form = ev.target;
  $("#muse-error").textContent = "";
  try {
    const spec = specOf(form);
    const muse = editing
      ? await api(`/muses/${encodeURIComponent(editing)}`, { method: "PUT", body: spec })
      : await api("/muses", { method: "POST", body: spec });
    await loadMuses();
    fillForm(muse);
  } catch (e) {
    $("#muse-error").textContent = e.message;
  }
}

async function upload(ev) {
  const file = ev.target.files[0];
  if (!file) return;
  const form = new FormData();
  form.append("file", file);
  try {
    const stored = await api("/uploads", { method: "POST", form });
    refs.push(stored.key);
    renderRefs();
  } catch (e) {
    $("#muse-error").textContent = e.message;
  }
  ev.target.value = "";
}

async function importFile(ev) {
  const file = ev.target.files[0];
  if (!file) return;
  try {
    const doc = JSON.parse(await file.text());
    await api("/muses/import", { method: "POST", body: doc });
    await loadMuses();
  } catch (e) {
    $("#muse-error").textContent = e.message;
  }
  ev.target.value = "";
}

export function initMuses({ onChange }) {
  notify = onChange;
  $("#muse-form").addEventListener("submit", save);
  $("#muse-new").addEventListener("click", () => fillForm(null));
  $("#muse-search").addEventListener("input", renderCards);
  $("#muse-upload").addEventListener("change", upload);
  $("#muse-import").addEventListener("change", importFile);
  $("#muse-delete").addEventListener("click", async () => {
    if (!editing || !confirm("Delete this muse?")) return;
    await api(`/muses/${encodeURIComponent(editing)}`, { method: "DELETE" });
    fillForm(null);
    await loadMuses();
  });
  fillForm(null);
}
