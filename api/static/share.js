// The read-only page of a share link: the one output (or album) the link names.
const $ = (sel) => document.querySelector(sel);
const token = location.pathname.split("/").filter(Boolean).pop() || "";

function media(item) {
  const video = item.contentType.startsWith("video/");
  const el = document.createElement(video ? "video" : "img");
  el.src = item.url;
  if (video) Object.assign(el, { controls: true, loop: true, muted: true, playsInline: true, preload: "metadata" });
  else Object.assign(el, { alt: item.prompt || "shared image", loading: "lazy" });
  el.className = "shared-media";
  return el;
}

async function load() {
  const res = await fetch(`/api/v1/shared/${encodeURIComponent(token)}`, { credentials: "omit" });
  if (!res.ok) {
    $("#shared-title").textContent = "This link has ended";
    $("#shared-error").textContent = "It was revoked, it expired, or it never existed.";
    document.body.dataset.state = "ended";
    return;
  }
  const page = await res.json();
  $("#shared-title").textContent = page.title;
  const until = new Date(page.expires);
  $("#shared-note").textContent = `${page.items.length} ${page.items.length === 1 ? "item" : "items"} · link valid until ${until.toLocaleString()}`;
  const list = $("#shared-items");
  for (const item of page.items) {
    const li = document.createElement("li");
    const fig = document.createElement("figure");
    const cap = document.createElement("figcaption");
    cap.textContent = [item.prompt, item.width && `${item.width}×${item.height}`].filter(Boolean).join(" · ");
    fig.append(media(item), cap);
    li.append(fig);
    list.append(li);
  }
  document.body.dataset.state = "shown";
}

load().catch((e) => {
  $("#shared-error").textContent = String(e);
});
