// How a muse's reference images are used, said honestly on the create and muse pages
// (and, once a run is done, what it did with them: usedLabel).
// The create page shows the mode of the generation being composed (from the estimate,
// which the server computes with the operator's own plan); the muse editor shows, per
// pool, what its checkpoints do (the pools list's referenceModes).
import { api } from "./api.js";

const $ = (sel, root = document) => root.querySelector(sel);
let pools = [];

const STYLE = { "flux-redux": "Flux Redux" };
const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

export function createLabel(est) {
  if (est.referenceMode === "style") {
    const left = est.referencesLeftOut
      ? `; ${plural(est.referencesLeftOut, "more reference")} not used (this pool applies at most ${est.references})`
      : "";
    return `References condition the image (Flux Redux): ${plural(est.references, "reference image")} of this muse${left}.`;
  }
  if (est.referenceMode === "start") {
    const n = est.referencesLeftOut;
    const left = n ? ` ${n === 1 ? "The other reference is" : `The other ${n} references are`} not used on this model.` : "";
    return `First reference as the image-to-image start: the generation starts from it; it does not lock a face or an identity.${left}`;
  }
  return "";
}

// What a finished run did with its muse's references (status.references, also on gallery
// items): "" when the run had none to use.
export function usedLabel(refs) {
  if (!refs) return "";
  const left = refs.leftOut ? `; ${plural(refs.leftOut, "more reference")} not used` : "";
  if (refs.mode === "style") {
    return `Flux Redux: ${plural(refs.applied, "reference image")} at strength ${refs.strength}${left}`;
  }
  if (refs.mode === "start") {
    const from = refs.applied ? "the muse's first reference" : "its own image (the muse's references unused)";
    return `Image-to-image from ${from}${refs.applied ? left : ""}`;
  }
  return `Not used (${plural(refs.leftOut, "reference image")} of the muse)`;
}

export function poolLabel(pool) {
  const styled = (pool.referenceModes || []).filter((m) => m.mode === "style");
  if (!styled.length) return `${pool.name}: first reference as the image-to-image start (it does not lock the face or identity).`;
  const parts = styled.map((m) => `${m.checkpoint} (${STYLE[m.architecture] || m.architecture}, up to ${m.maxReferences})`);
  const others = (pool.referenceModes || []).length > styled.length ? "; its other models: first reference as the image-to-image start" : "";
  return `${pool.name}: references condition the image on ${parts.join(", ")}${others}.`;
}

function showCreate(est) {
  const el = $("#reference-mode");
  if (!el) return;
  const text = createLabel(est);
  el.textContent = text;
  el.dataset.mode = est.referenceMode;
  el.hidden = !text;
}

function showMuse() {
  const list = $("#muse-ref-modes");
  if (!list) return;
  list.replaceChildren(...pools.map((p) => {
    const li = document.createElement("li");
    li.textContent = poolLabel(p);
    li.dataset.pool = p.name;
    return li;
  }));
}

document.addEventListener("warmpool:estimate", (ev) => showCreate(ev.detail));
document.addEventListener("warmpool:estimate-cleared", () => showCreate({ referenceMode: "none" }));
document.addEventListener("warmpool:pools", (ev) => {
  pools = ev.detail;
  showMuse();
});
document.addEventListener("warmpool:started", async () => {
  try {
    pools = await api("/pools");
    showMuse();
  } catch {
    /* the pools stream brings them later */
  }
});
