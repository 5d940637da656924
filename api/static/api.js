// Calls of the studio API (same origin; the session cookie or proxy carries identity).

export class ApiError extends Error {
  constructor(status, detail) {
    super(ApiError.describe(detail) || `HTTP ${status}`);
    this.status = status;
    this.detail = detail;
  }

  // FastAPI's 422 body: [{loc: ["body", "prompt"], msg}] → "prompt: msg".
  static describe(detail) {
    if (Array.isArray(detail)) {
      return detail
        .map((d) => `${(d.loc || []).filter((p) => p !== "body").join(".")}: ${d.msg}`)
        .join("; ");
    }
    return typeof detail === "string" ? detail : "";
  }
}

export async function api(path, { method = "GET", body, form, signal } = {}) {
  const init = { method, signal, headers: { Accept: "application/json" }, credentials: "same-origin" };
  if (form) init.body = form;
  else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  const res = await fetch(`/api/v1${path}`, init);
  if (res.status === 204) return null;
  const data = res.headers.get("content-type")?.includes("json") ? await res.json() : null;
  if (!res.ok) {
    const err = new ApiError(res.status, data?.detail);
    if (res.status === 401) document.dispatchEvent(new CustomEvent("warmpool:signin"));
    throw err;
  }
  return data;
}

export function qs(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== "" && v !== null && v !== undefined) q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : "";
}
