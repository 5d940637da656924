// The gallery grid with filters, and the lightbox (Esc closes, arrows move).
import { api } from "./api.js";
import { usedLabel } from "./references.js";

const $ = (sel, root = document) => root.querySelector(sel);
let items = [];
let nextOffset = null;
let shown = [];
let at = 0;

// Several tags (comma-separated) must all match; the other filters as the API names them.
export function filters() {
  const data = new FormData($("#gallery-filters"));
  const q = new URLSearchParams();
  for (const key of ["muse", "kind", "q", "rating", "since", "until", "album"]) {
    const value = String(data.get(key) ?? "").trim();
    if (value) q.set(key, value);
  }
  if (data.get("favourite")) q.set("favourite", "true");
  for (const tag of String(data.get("tag") || "").split(",")) if (tag.trim()) q.append("tag", tag.trim());
  return q;
}

export async function loadGallery(append = false) {
  const offset = append ? nextOffset ?? 0 : 0;
  const q = filters();
  q.set("offset", offset);
  q.set("limit", 24);
  const page = await api(`/gallery?${q}`);
  items = append ? [...items, ...page.items] : page.items;
  nextOffset = page.nextOffset;
  render();
  document.dispatchEvent(new CustomEvent("warmpool:gallery", { detail: { total: page.total } }));
}

// An output deleted from the lightbox leaves the grid and the lightbox.
export function dropItem(item) {
  items = items.filter((i) => i !== item);
  shown = shown.filter((i) => i !== item);
  render();
  if (!shown.length) $("#lightbox").close();
  else {
    at = Math.min(at, shown.length - 1);
    paint();
  }
}

function render() {
  const grid = $("#gallery-grid");
  grid.replaceChildren();
  items.forEach((item, i) => {
    const li = document.createElement("li");
    const btn = document.createElement("button");
    btn.type = "button";
    btn.className = "tile";
    btn.setAttribute("aria-label", `Open: ${item.prompt}`);
    btn.dataset.output = `${item.job}/${item.index}`;
    if (item.favourite) btn.dataset.favourite = "true";
    const video = item.contentType?.startsWith("video/");
    const img = document.createElement(video ? "video" : "img");
    img.src = video ? `${item.url}?disposition=inline#t=0.1` : item.thumbnailUrl;
    if (video) Object.assign(img, { muted: true, preload: "metadata" });
    else Object.assign(img, { alt: item.prompt, loading: "lazy" });
    btn.append(img);
    btn.addEventListener("click", () => openLightbox(items, i));
    li.append(btn);
    grid.append(li);
  });
  if (!items.length) {
    const li = document.createElement("li");
    li.textContent = "Nothing here yet — make something.";
    grid.append(li);
  }
  $("#gallery-more").hidden = nextOffset === null || nextOffset === undefined;
}

function paint() {
  const item = shown[at];
  const img = $("#lightbox-img");
  const video = item.contentType?.startsWith("video/");
  img.hidden = video;
  $("#lightbox-video")?.remove();
  if (video) {
    const el = document.createElement("video");
    Object.assign(el, { id: "lightbox-video", controls: true, loop: true, muted: true });
    el.src = `${item.url}?disposition=inline`;
    img.after(el);
  } else img.src = `${item.url}?disposition=inline`;
  img.alt = item.prompt || "";
  $("#lightbox-caption").textContent = [item.prompt, item.width && `${item.width}×${item.height}`,
    usedLabel(item.references)]
    .filter(Boolean)
    .join(" · ");
  const dl = $("#lightbox-download");
  dl.href = item.url;
  dl.setAttribute("download", "");
  $("#lightbox-prev").disabled = at === 0;
  $("#lightbox-next").disabled = at >= shown.length - 1;
  document.dispatchEvent(new CustomEvent("warmpool:lightbox", { detail: item }));
}

export function openLightbox(list, index) {
  shown = list;
  at = index;
  paint();
  const dialog = $("#lightbox");
  if (!dialog.open) dialog.showModal();
  $("#lightbox-close").focus();
}

export function initGallery() {
  let timer = null;
  $("#gallery-filters").addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => loadGallery(), 250);
  });
  $("#gallery-filters").addEventListener("submit", (ev) => ev.preventDefault());
  $("#gallery-more").addEventListener("click", () => loadGallery(true));
  const dialog = $("#lightbox");
  const move = (d) => {
    at = Math.min(Math.max(at + d, 0), shown.length - 1);
    paint();
  };
  $("#lightbox-prev").addEventListener("click", () => move(-1));
  $("#lightbox-next").addEventListener("click", () => move(1));
  $("#lightbox-close").addEventListener("click", () => dialog.close());
  dialog.addEventListener("keydown", (ev) => {
    if (ev.key === "ArrowLeft") move(-1);
    if (ev.key === "ArrowRight") move(1);
  });
  dialog.addEventListener("click", (ev) => {
    if (ev.target === dialog) dialog.close();
  });
}
