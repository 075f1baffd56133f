// Admin: overview of the tenant's ingest and the gateway's pipeline, polled
// every 2 s while shown.
import { get } from "./api.js";
import { h, clear, fmtNum, fmtBytes, fmtTime } from "./dom.js";

const el = (id) => document.getElementById(id);
let timer = null;
let visible = false;

export function enterOverview() {
  visible = true;
  load();
}

export function leaveOverview() {
  visible = false;
  clearTimeout(timer);
  timer = null;
}

function fmtValue(key, v) {
  if (v === null || v === undefined) return h("span", { class: "dim" }, "none");
  if (typeof v === "number") return /bytes$/.test(key) ? fmtBytes(v) : fmtNum(v);
  if (typeof v === "boolean") return v ? "yes" : "no";
  if (typeof v === "object") return h("span", { class: "mono small" }, JSON.stringify(v));
  return String(v);
}

const CARD_TITLE = { wal: "Write-ahead log", index: "Index lag", archive: "Archive", live_tails: "Live tails" };
const CARD_ORDER = ["wal", "index", "archive"];

function card(name, obj) {
  const rows = [];
  if (obj && typeof obj === "object") {
    if (typeof obj.bytes === "number" && typeof obj.max_bytes === "number" && obj.max_bytes > 0) {
      const fill = h("div", { class: "progress-fill" });
      const pct = Math.min(100, (100 * obj.bytes) / obj.max_bytes);
      fill.style.width = pct.toFixed(1) + "%";
      rows.push(h("div", { class: "progress", title: pct.toFixed(1) + "% of the bound" }, fill));
    }
    for (const [k, v] of Object.entries(obj)) {
      const err = /error/.test(k) && v;
      rows.push(h("div", { class: "kv" + (err ? " error-text" : ""), "data-key": k }, [
        h("span", { class: "k" }, k.replace(/_/g, " ")),
        h("span", { class: "v" }, fmtValue(k, v)),
      ]));
    }
  } else {
    rows.push(h("div", { class: "kv" }, fmtValue(name, obj)));
  }
  return h("div", { class: "card", id: "overview-" + name, "data-card": name },
    [h("h3", {}, CARD_TITLE[name] || name.replace(/_/g, " ")), rows]);
}

async function load() {
  clearTimeout(timer);
  timer = null;
  let data;
  try {
    data = await get("/api/v1/overview");
  } catch (e) {
    if (e.status === 401 || !visible) return;
    el("overview-updated").textContent = "error: " + e.message;
    el("overview-updated").className = "error-text";
    timer = setTimeout(load, 2000);
    return;
  }
  if (!visible) return;
  render(data || {});
  timer = setTimeout(load, 2000);
}

function render(data) {
  const cards = clear(el("overview-cards"));
  const keys = Object.keys(data).filter((k) => k !== "types");
  const rank = (k) => (CARD_ORDER.indexOf(k) + 1) || 99;
  keys.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  for (const k of keys) cards.appendChild(card(k, data[k]));
  const body = clear(el("overview-types-body"));
  const types = Array.isArray(data.types) ? data.types : [];
  if (!types.length) body.appendChild(h("tr", {}, h("td", { colspan: 5, class: "dim" }, "no events received yet")));
  for (const t of types) {
    body.appendChild(h("tr", { class: "overview-type", "data-type": String(t.type) }, [
      h("td", { class: "mono" }, String(t.type)),
      h("td", { class: "num" }, fmtNum(t.events_per_s)),
      h("td", { class: "num" }, fmtNum(t.received)),
      h("td", { class: "num" + (t.rejected ? " warn-text" : "") }, fmtNum(t.rejected)),
      h("td", { class: "num" + (t.dead_lettered ? " warn-text" : "") }, fmtNum(t.dead_lettered)),
    ]));
  }
  el("overview-updated").className = "dim small";
  el("overview-updated").textContent = "updated " + fmtTime(new Date().toISOString()) + " · every 2 s";
}

// Types for the pickers (explore, replay).
export async function fetchTypes() {
  try {
    const data = await get("/api/v1/overview");
    return ((data && data.types) || []).map((t) => t.type).filter(Boolean);
  } catch (_) {
    return [];
  }
}
