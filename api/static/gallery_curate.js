// Curating the gallery: favourites, ratings, albums, share links, deleting, storage use.
// The lightbox tells which item it shows ("warmpool:lightbox"); the grid tells when it
// reloaded ("warmpool:gallery").
import { api } from "./api.js";
import { dropItem, loadGallery } from "./gallery.js";

const $ = (sel) => document.querySelector(sel);
let item = null; // the gallery item in the lightbox (null: a live result, no curation)
let albums = [];
let itemLink = null;
let albumLink = null;
let armed = false; // the delete buttons ask once more before deleting
let armedJob = false;

const path = (i) => `/gallery/${encodeURIComponent(i.job)}/${i.index}`;
const say = (text) => {
  $("#lb-status").textContent = text;
};
const fail = (e) => say(e.message || String(e));

function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MB`;
  return `${(n / 1024 ** 3).toFixed(2)} GB`;
}

async function loadUsage() {
  try {
    const use = await api("/gallery/usage");
    const keep = use.retentionDays
      ? ` · outputs older than ${use.retentionDays} days are deleted unless favourited or in an album`
      : "";
    $("#gallery-usage").textContent = `${use.outputs} outputs · ${formatBytes(use.bytes)} stored${keep}`;
  } catch {
    /* shown again on the next load */
  }
}

async function loadAlbums() {
  albums = await api("/albums");
  const filter = $("#album-filter");
  const keep = filter.value;
  filter.replaceChildren(new Option("All", ""));
  const add = $("#lb-album");
  add.replaceChildren(new Option("Add to album…", ""));
  for (const a of albums) {
    filter.append(new Option(`${a.name} (${a.count})`, a.id));
    add.append(new Option(a.name, a.id));
  }
  filter.value = albums.some((a) => String(a.id) === keep) ? keep : "";
  albumTools();
}

function albumTools() {
  const chosen = $("#album-filter").value;
  $("#album-share").hidden = !chosen;
  $("#album-delete").hidden = !chosen;
  if (!chosen) $("#album-link").hidden = true;
}

async function loadShares() {
  const list = $("#share-list");
  const links = await api("/shares");
  list.replaceChildren();
  for (const link of links) {
    const li = document.createElement("li");
    const what = link.kind === "album"
      ? `album ${albums.find((a) => a.id === link.album)?.name ?? link.album}`
      : `${link.job} #${link.index + 1}`;
    const ended = link.revoked || new Date(link.expires) < new Date();
    const text = document.createElement("span");
    text.textContent = `${what} · ${ended ? (link.revoked ? "revoked" : "expired") : `until ${new Date(link.expires).toLocaleString()}`}`;
    li.append(text);
    if (!ended) {
      const url = document.createElement("input");
      Object.assign(url, { readOnly: true, value: `${location.origin}${link.url}` });
      url.setAttribute("aria-label", `Link to ${what}`);
      const revoke = document.createElement("button");
      Object.assign(revoke, { type: "button", className: "danger", textContent: "Revoke" });
      revoke.addEventListener("click", async () => {
        await api(`/shares/${link.id}`, { method: "DELETE" }).catch(() => {});
        loadShares();
      });
      li.append(url, revoke);
    }
    list.append(li);
  }
  if (!links.length) list.textContent = "No links yet: share an output from its viewer, or an album.";
}

function paintCuration(detail) {
  item = detail && detail.job ? detail : null;
  $("#lightbox-curate").hidden = !item;
  armed = false;
  armedJob = false;
  $("#lb-delete").textContent = "Delete";
  $("#lb-delete-job").textContent = "Delete the whole generation";
  $("#lb-share-box").hidden = true;
  itemLink = null;
  say("");
  if (!item) return;
  const fav = $("#lb-favourite");
  fav.setAttribute("aria-pressed", String(Boolean(item.favourite)));
  fav.textContent = item.favourite ? "★ Favourite" : "☆ Favourite";
  $("#lb-rating").value = item.rating ? String(item.rating) : "";
  $("#lb-album").value = "";
}

async function mark(change) {
  const m = await api(`${path(item)}/mark`, { method: "PUT", body: change });
  Object.assign(item, { favourite: m.favourite, rating: m.rating });
  paintCuration(item);
}

async function share(body) {
  const link = await api("/shares", { method: "POST", body });
  return { ...link, absolute: `${location.origin}${link.url}` };
}

function init() {
  document.addEventListener("warmpool:lightbox", (ev) => paintCuration(ev.detail));
  document.addEventListener("warmpool:gallery", () => {
    loadUsage();
    loadAlbums().catch(() => {});
  });
  $("#lb-favourite").addEventListener("click", () => mark({ favourite: !item.favourite }).catch(fail));
  $("#lb-rating").addEventListener("change", (ev) => {
    const value = ev.target.value;
    mark({ rating: value ? Number(value) : null }).catch(fail);
  });
  $("#lb-album").addEventListener("change", async (ev) => {
    const id = ev.target.value;
    if (!id) return;
    try {
      await api(`/albums/${id}/items`, { method: "POST", body: { job: item.job, index: item.index } });
      item.albums = [...new Set([...(item.albums || []), Number(id)])];
      say(`Added to ${albums.find((a) => String(a.id) === id)?.name ?? "the album"}.`);
      ev.target.value = "";
      await loadAlbums();
    } catch (e) {
      fail(e);
    }
  });
  $("#lb-share").addEventListener("click", async () => {
    try {
      itemLink = await share({ job: item.job, index: item.index });
      $("#share-url").value = itemLink.absolute;
      $("#lb-share-box").hidden = false;
      $("#share-url").select();
      say(`Anyone with the link can view this until ${new Date(itemLink.expires).toLocaleString()}.`);
    } catch (e) {
      fail(e);
    }
  });
  $("#share-revoke").addEventListener("click", async () => {
    if (!itemLink) return;
    await api(`/shares/${itemLink.id}`, { method: "DELETE" }).catch(fail);
    $("#lb-share-box").hidden = true;
    itemLink = null;
    say("The link was revoked: it no longer opens.");
  });
  $("#lb-delete").addEventListener("click", async () => {
    if (!armed) {
      armed = true;
      $("#lb-delete").textContent = "Really delete? Click again";
      return;
    }
    const gone = item;
    try {
      await api(path(gone), { method: "DELETE" });
      dropItem(gone);
      loadUsage();
    } catch (e) {
      fail(e);
    }
  });
  $("#lb-delete-job").addEventListener("click", async () => {
    if (!armedJob) {
      armedJob = true;
      $("#lb-delete-job").textContent = "Really delete every output of it? Click again";
      return;
    }
    try {
      await api(`/gallery/${encodeURIComponent(item.job)}`, { method: "DELETE" });
      $("#lightbox").close();
      await loadGallery();
    } catch (e) {
      fail(e);
    }
  });
  $("#share-links").addEventListener("toggle", () => {
    if ($("#share-links").open) loadShares().catch(() => {});
  });
  $("#album-new").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("#gallery-error").textContent = "";
    try {
      await api("/albums", { method: "POST", body: { name: $("#album-name").value } });
      $("#album-name").value = "";
      await loadAlbums();
    } catch (e) {
      $("#gallery-error").textContent = e.message;
    }
  });
  $("#album-filter").addEventListener("change", albumTools);
  $("#album-share").addEventListener("click", async () => {
    try {
      albumLink = await share({ album: Number($("#album-filter").value) });
      $("#album-link-url").value = albumLink.absolute;
      $("#album-link").hidden = false;
    } catch (e) {
      $("#gallery-error").textContent = e.message;
    }
  });
  $("#album-link-revoke").addEventListener("click", async () => {
    if (albumLink) await api(`/shares/${albumLink.id}`, { method: "DELETE" }).catch(() => {});
    $("#album-link").hidden = true;
    albumLink = null;
  });
  $("#album-delete").addEventListener("click", async () => {
    const id = $("#album-filter").value;
    if (!id) return;
    await api(`/albums/${id}`, { method: "DELETE" }).catch((e) => {
      $("#gallery-error").textContent = e.message;
    });
    $("#album-filter").value = "";
    await loadAlbums();
    await loadGallery();
  });
}

init();
