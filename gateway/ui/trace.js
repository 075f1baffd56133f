// Request trace: every event with one request id (or trace id), all log
// types, over 7 days, oldest first, with the time from the step before.
import { get } from "./api.js";
import { h, $, clear, fmtTime, fmtDelta, fmtNum, levelGroup, copyText } from "./dom.js";
import { quoteValue, valueText } from "./query.js";
import { jsonTree } from "./jsontree.js";

const TRACE_RANGE = "now-7d";
const TRACE_LIMIT = 1000;

function when(ev) {
  const t = Date.parse(ev.timestamp || ev.received_at);
  return isNaN(t) ? 0 : t;
}

function order(a, b) {
  return when(a) - when(b) ||
    (Date.parse(a.received_at) || 0) - (Date.parse(b.received_at) || 0) ||
    String(a.id || "").localeCompare(String(b.id || ""));
}

export function traceQuery(key) {
  return key.field + ":" + quoteValue(key.id);
}

let seq = 0;

// root: #trace-view. key: {field, id}.
export async function showTrace(root, key) {
  const mine = ++seq;
  const body = $("#trace-body", root);
  const title = $("#trace-title", root);
  const summary = $("#trace-summary", root);
  clear(title).append(`Trace ${key.field === "trace_id" ? "trace_id" : "request_id"} `, h("code", {}, key.id));
  summary.textContent = "loading…";
  clear(body);
  root.hidden = false;
  let data;
  try {
    data = await get("/api/v1/search", { q: traceQuery(key), from: TRACE_RANGE, to: "now", limit: TRACE_LIMIT });
  } catch (e) {
    if (mine !== seq) return;
    summary.textContent = "";
    body.appendChild(h("tr", {}, h("td", { colspan: 7, class: "error-text" }, e.message)));
    return;
  }
  if (mine !== seq) return;
  const events = ((data && data.hits) || []).slice().sort(order);
  const types = [...new Set(events.map((e) => e.type).filter(Boolean))];
  const services = [...new Set(events.map((e) => e.service).filter(Boolean))];
  const span = events.length > 1 ? when(events[events.length - 1]) - when(events[0]) : 0;
  summary.textContent = `${fmtNum(events.length)} events` +
    (data.total > events.length ? ` (of ${fmtNum(data.total)})` : "") +
    ` · ${types.length} types (${types.join(", ")})` +
    (services.length ? ` · ${services.length} services` : "") +
    ` · ${fmtDelta(span).replace(/^\+/, "")} end to end`;
  let prev = null;
  events.forEach((ev, i) => {
    const t = when(ev);
    const delta = prev === null ? "start" : fmtDelta(t - prev);
    prev = t;
    const group = levelGroup(ev.level);
    const row = h("tr", { class: "trace-row lvl-row-" + group, "data-type": ev.type || "", "data-index": i }, [
      h("td", { class: "trace-delta" }, delta),
      h("td", { class: "trace-time", title: String(ev.timestamp || "") }, fmtTime(ev.timestamp || ev.received_at)),
      h("td", { class: "trace-type" }, valueText(ev.type)),
      h("td", { class: "trace-service" }, valueText(ev.service)),
      h("td", { class: "trace-level" }, ev.level ? h("span", { class: "level lvl-" + group }, String(ev.level)) : ""),
      h("td", { class: "trace-message" }, valueText(ev.message !== undefined ? ev.message : ev.reason)),
    ]);
    row.addEventListener("click", () => {
      const next = row.nextElementSibling;
      if (next && next.classList.contains("trace-detail-row")) {
        next.remove();
        return;
      }
      const detail = h("div", { class: "hit-detail" }, [
        h("div", { class: "detail-actions" }, h("button", {
          type: "button", class: "copy-json",
          on: { click: () => copyText(JSON.stringify(ev, null, 2), "event JSON") },
        }, "copy JSON")),
        jsonTree(ev),
      ]);
      row.after(h("tr", { class: "trace-detail-row" }, h("td", { colspan: 6 }, detail)));
    });
    body.appendChild(row);
  });
  if (!events.length) body.appendChild(h("tr", {}, h("td", { colspan: 6, class: "dim" }, "no events with this id in the last 7 days")));
}

export function hideTrace(root) {
  seq++;
  root.hidden = true;
}
