// The page's state, all of it in the URL's query string:
//   view  explore (default) | live | trace | filters | replay | overview | config
//   q, from, to, type, cols (comma-separated extra columns),
//   trace + tf (the id and field of an open request trace).

export const VIEWS = ["explore", "live", "trace", "filters", "replay", "overview", "config"];
export const DEFAULT_FROM = "now-1h";
export const DEFAULT_TO = "now";

export const state = {
  view: "explore",
  q: "",
  from: DEFAULT_FROM,
  to: DEFAULT_TO,
  type: "",
  cols: [],
  trace: "",
  tf: "request_id",
};

export function readUrl() {
  const p = new URLSearchParams(location.search);
  const view = p.get("view") || "explore";
  state.view = VIEWS.includes(view) ? view : "explore";
  state.q = p.get("q") || "";
  state.from = p.get("from") || DEFAULT_FROM;
  state.to = p.get("to") || DEFAULT_TO;
  state.type = p.get("type") || "";
  state.cols = (p.get("cols") || "").split(",").map((c) => c.trim()).filter(Boolean);
  state.trace = p.get("trace") || "";
  state.tf = p.get("tf") === "trace_id" ? "trace_id" : "request_id";
  if (state.view === "trace" && !state.trace) state.view = "explore";
  return state;
}

export function urlFor(st) {
  const p = new URLSearchParams();
  if (st.view && st.view !== "explore") p.set("view", st.view);
  if (st.q) p.set("q", st.q);
  if (st.from && st.from !== DEFAULT_FROM) p.set("from", st.from);
  if (st.to && st.to !== DEFAULT_TO) p.set("to", st.to);
  if (st.type) p.set("type", st.type);
  if (st.cols && st.cols.length) p.set("cols", st.cols.join(","));
  if (st.view === "trace" && st.trace) {
    p.set("trace", st.trace);
    if (st.tf !== "request_id") p.set("tf", st.tf);
  }
  const s = p.toString();
  return location.pathname + (s ? "?" + s : "");
}

// push: a new history entry (a new query or view), else replace.
export function writeUrl(push) {
  const url = urlFor(state);
  if (url === location.pathname + location.search) return;
  if (push) history.pushState(null, "", url);
  else history.replaceState(null, "", url);
}

const UNIT_MS = { ms: 1, s: 1000, m: 60000, h: 3600000, d: 86400000, w: 604800000 };

// "now", "now-15m", RFC 3339, epoch seconds or milliseconds → epoch ms.
export function resolveTime(str, nowMs) {
  if (str === undefined || str === null || str === "") return null;
  const v = String(str).trim();
  const now = nowMs === undefined ? Date.now() : nowMs;
  if (v === "now") return now;
  const rel = /^now\s*([-+])\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)$/.exec(v);
  if (rel) {
    const amount = parseFloat(rel[2]) * UNIT_MS[rel[3]];
    return rel[1] === "-" ? now - amount : now + amount;
  }
  if (/^\d+$/.test(v)) {
    const n = parseInt(v, 10);
    return v.length >= 11 ? n : n * 1000;
  }
  const t = Date.parse(v);
  return isNaN(t) ? null : t;
}

export function isRelative(str) {
  return /^now/.test(String(str || "").trim());
}

// Recent queries, one list per tenant: only query text goes to
// localStorage, never a key.
const HISTORY_MAX = 20;
let historyKey = "logway.queryHistory";

export function setHistoryScope(tenant) {
  historyKey = "logway.queryHistory." + (tenant || "");
}

export function loadHistory() {
  try {
    const v = JSON.parse(localStorage.getItem(historyKey) || "[]");
    return Array.isArray(v) ? v.filter((x) => typeof x === "string") : [];
  } catch (_) {
    return [];
  }
}

export function pushHistory(q) {
  if (!q || !q.trim()) return;
  const list = [q, ...loadHistory().filter((x) => x !== q)].slice(0, HISTORY_MAX);
  try { localStorage.setItem(historyKey, JSON.stringify(list)); } catch (_) { /* full or disabled */ }
}

export function clearHistory() {
  try { localStorage.removeItem(historyKey); } catch (_) { /* ignore */ }
}
