// Muse attributes as pick lists with free text, variations, and the variation choice on
// the create page. Used by muses.js; the pick lists come from GET /muses/traits.
import { api } from "./api.js";

const $ = (sel, root = document) => root.querySelector(sel);
let choices = null;

const LABELS = {
  nationality: "Nationality", ethnicity: "Ethnicity", occupation: "Occupation",
  height: "Height", build: "Build", shape: "Body shape",
  faceShape: "Face shape", jawline: "Jawline", cheekbones: "Cheekbones", makeup: "Makeup",
  eyeColour: "Eye colour", eyeShape: "Eye shape", eyeSize: "Eye size",
  hairColour: "Hair colour", hairLength: "Hair length", hairStyle: "Hair style", hairTexture: "Hair texture",
  lips: "Lips", nose: "Nose", skinTone: "Skin tone", skinTexture: "Skin texture",
  fashion: "Fashion", footwear: "Footwear", nails: "Nails",
};

// One input per attribute with its choices as a datalist: pick one, or type anything.
export async function buildTraitFields() {
  if (choices) return;
  choices = await api("/muses/traits");
  const grid = $("#trait-fields");
  grid.replaceChildren();
  for (const [key, label] of Object.entries(LABELS)) {
    const wrap = document.createElement("label");
    wrap.textContent = label;
    const input = document.createElement("input");
    Object.assign(input, { name: `traits.${key}`, maxLength: 80, autocomplete: "off" });
    input.setAttribute("list", `choices-${key}`);
    const list = document.createElement("datalist");
    list.id = `choices-${key}`;
    for (const value of choices[key] || []) list.append(new Option(value, value));
    wrap.append(input, list);
    grid.append(wrap);
  }
  const checks = $("#trait-personality");
  checks.replaceChildren();
  for (const value of choices.personality || []) {
    const label = document.createElement("label");
    const box = document.createElement("input");
    Object.assign(box, { type: "checkbox", name: "traits.personality", value });
    label.append(box, ` ${value}`);
    checks.append(label);
  }
}

export function fillTraits(form, traits = {}) {
  for (const key of Object.keys(LABELS)) {
    const el = form.elements.namedItem(`traits.${key}`);
    if (el) el.value = traits[key] || "";
  }
  const known = new Set(choices?.personality || []);
  const chosen = traits.personality || [];
  for (const box of form.querySelectorAll("[name='traits.personality']")) box.checked = chosen.includes(box.value);
  form.elements.namedItem("traits.personalityOther").value = chosen.filter((t) => !known.has(t)).join(", ");
}

export function traitsOf(form) {
  const data = new FormData(form);
  const traits = {};
  for (const key of Object.keys(LABELS)) {
    const value = String(data.get(`traits.${key}`) || "").trim();
    if (value) traits[key] = value;
  }
  const other = String(data.get("traits.personalityOther") || "").split(",").map((t) => t.trim());
  traits.personality = [...data.getAll("traits.personality").map(String), ...other].filter(Boolean);
  return traits;
}

// ------------------------------------------------------------------ variations

function variationRow(v = {}) {
  const li = document.createElement("li");
  for (const [key, label, max] of [["name", "Name", 63], ["outfit", "Outfit", 400], ["scenario", "Scenario", 400], ["style", "Style", 400]]) {
    const wrap = document.createElement("label");
    wrap.textContent = label;
    const input = document.createElement("input");
    Object.assign(input, { value: v[key] || "", maxLength: max });
    input.dataset.key = key;
    if (key === "name") input.placeholder = "beach";
    wrap.append(input);
    li.append(wrap);
  }
  const rm = document.createElement("button");
  Object.assign(rm, { type: "button", className: "ghost", textContent: "Remove" });
  rm.setAttribute("aria-label", `Remove variation ${v.name || ""}`.trim());
  rm.addEventListener("click", () => li.remove());
  li.append(rm);
  return li;
}

export function fillVariations(list = []) {
  $("#muse-variations").replaceChildren(...list.map(variationRow));
}

export function variationsOf() {
  const out = [];
  for (const li of document.querySelectorAll("#muse-variations li")) {
    const v = {};
    for (const input of li.querySelectorAll("input")) v[input.dataset.key] = input.value.trim();
    if (v.name || v.outfit || v.scenario || v.style) out.push(v);
  }
  return out;
}

// ------------------------------------------------------------------ create page

let known = [];

export function rememberMuses(muses) {
  known = muses;
  fillVariationChoice();
}

function fillVariationChoice(wanted) {
  const muse = known.find((m) => m.name === $("#muse").value);
  const select = $("#variation");
  const keep = wanted ?? select.value;
  select.replaceChildren(new Option("As usual", ""));
  for (const v of muse?.spec.variations || []) select.append(new Option(v.name, v.name));
  select.value = [...select.options].some((o) => o.value === keep) ? keep : "";
  $("#variation-wrap").hidden = !(muse?.spec.variations || []).length;
}

function init() {
  $("#variation-add").addEventListener("click", () => {
    $("#muse-variations").append(variationRow());
    $("#muse-variations li:last-child input").focus();
  });
  $("#muse").addEventListener("change", () => fillVariationChoice(""));
  document.addEventListener("warmpool:muses", (ev) => rememberMuses(ev.detail));
  document.addEventListener("warmpool:muse-chosen", (ev) => fillVariationChoice(ev.detail.variation));
}

init();
