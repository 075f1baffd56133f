// The gateway's JSON API. The session cookie is HttpOnly (the browser sends
// it); the CSRF token lives only in this module's variable, never in storage.

let csrf = null;
let onUnauthorized = () => {};

export class ApiError extends Error {
  constructor(status, code, message, position) {
    super(message);
    this.status = status;
    this.code = code;
    this.position = position;
  }
}

export function setCsrf(token) {
  csrf = token || null;
}

export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

export function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v === undefined || v === null || v === "") continue;
    u.set(k, String(v));
  }
  const s = u.toString();
  return s ? "?" + s : "";
}

// api("GET", "/api/v1/search", {params}) → parsed JSON (null for 204).
// opts.json: a body sent as JSON; opts.body + opts.contentType: raw bytes.
// opts.auth401: false to not treat a 401 as "signed out" (the sign-in call).
export async function api(method, path, opts = {}) {
  const headers = { Accept: "application/json" };
  let body;
  if (opts.json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(opts.json);
  } else if (opts.body !== undefined) {
    headers["Content-Type"] = opts.contentType || "application/octet-stream";
    body = opts.body;
  }
  if (method !== "GET" && method !== "HEAD" && csrf) headers["X-Logway-CSRF"] = csrf;
  let res;
  try {
    res = await fetch(path + qs(opts.params), {
      method,
      headers,
      body,
      credentials: "same-origin",
      cache: "no-store",
      signal: opts.signal,
    });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError(0, "network", "network error: " + e.message);
  }
  if (res.status === 204) return null;
  const text = await res.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch (_) { data = null; }
  }
  if (!res.ok) {
    const err = (data && data.error) || {};
    const message = err.message || (text && !data ? text.slice(0, 300) : res.statusText) || ("HTTP " + res.status);
    const e = new ApiError(res.status, err.code || String(res.status), message,
      typeof err.position === "number" ? err.position : undefined);
    if (res.status === 401 && opts.auth401 !== false) onUnauthorized(e);
    throw e;
  }
  return data;
}

export const get = (path, params, opts) => api("GET", path, Object.assign({ params }, opts || {}));
