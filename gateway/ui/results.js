// The result table: one .hit-row per event, a .hit-detail row under it when
// expanded (JSON tree, copy JSON, trace). Event data only as text.
import { h, $$, clear, fmtTime, levelGroup, copyText } from "./dom.js";
import { getField, valueText, highlight } from "./query.js";
import { jsonTree } from "./jsontree.js";

const BASE_COLS = [
  { key: "time", label: "time", cls: "c-time" },
  { key: "level", label: "level", cls: "c-level" },
  { key: "type", label: "type", cls: "c-type" },
  { key: "service", label: "service", cls: "c-service" },
];

export function traceKey(ev) {
  const tid = ev && ev.fields && getField(ev, "trace_id");
  if (tid !== undefined && tid !== null && tid !== "" && typeof tid !== "object") return { field: "trace_id", id: String(tid) };
  if (ev && ev.request_id) return { field: "request_id", id: String(ev.request_id) };
  return null;
}

export class ResultList {
  // opts: {onTrace(key), onRemoveCol(name), terms(): [..], cols(): [..]}
  constructor(table, opts) {
    this.table = table;
    this.thead = table.tHead || table.createTHead();
    this.tbody = table.tBodies[0] || table.createTBody();
    this.opts = opts;
    this.events = new WeakMap();
    this.selected = null;
    this.tbody.addEventListener("click", (e) => {
      const row = e.target.closest("tr.hit-row");
      if (!row || !this.tbody.contains(row)) return;
      if (window.getSelection && String(window.getSelection()).length > 0) return;
      this.select(row);
      this.toggle(row);
    });
  }

  get rowCount() {
    return this.tbody.querySelectorAll("tr.hit-row").length;
  }

  header() {
    clear(this.thead);
    const tr = h("tr");
    for (const c of BASE_COLS) tr.appendChild(h("th", { class: c.cls, scope: "col" }, c.label));
    for (const name of this.opts.cols()) {
      tr.appendChild(h("th", { class: "c-col", scope: "col", "data-field": name }, [
        h("span", {}, name),
        h("button", {
          type: "button", class: "icon col-remove", title: "remove column " + name, "aria-label": "remove column " + name,
          on: { click: () => this.opts.onRemoveCol(name) },
        }, "×"),
      ]));
    }
    tr.appendChild(h("th", { class: "c-message", scope: "col" }, "message"));
    this.thead.appendChild(tr);
  }

  clear() {
    clear(this.tbody);
    this.selected = null;
  }

  row(ev) {
    const terms = this.opts.terms();
    const group = levelGroup(ev.level);
    const time = ev.timestamp || ev.received_at;
    const cells = [
      h("td", { class: "c-time", title: String(time || "") }, fmtTime(time)),
      h("td", { class: "c-level" }, ev.level ? h("span", { class: "level lvl-" + group }, String(ev.level)) : ""),
      h("td", { class: "c-type" }, valueText(ev.type)),
      h("td", { class: "c-service" }, valueText(ev.service)),
    ];
    for (const name of this.opts.cols()) {
      cells.push(h("td", { class: "c-col", "data-field": name }, valueText(getField(ev, name))));
    }
    const msg = h("td", { class: "c-message" });
    if (ev.outcome && ev.outcome !== "accepted" && ev.outcome !== "ok") {
      msg.appendChild(h("span", { class: "outcome" }, String(ev.outcome)));
    }
    if (ev.message !== undefined && ev.message !== null) {
      msg.appendChild(highlight(valueText(ev.message), terms));
    } else {
      const alt = ev.reason ? "reason: " + valueText(ev.reason) : ev.fields ? JSON.stringify(ev.fields) : "";
      msg.appendChild(h("span", { class: "dim" }, alt.length > 400 ? alt.slice(0, 400) + "…" : alt));
    }
    cells.push(msg);
    const tr = h("tr", { class: "hit-row lvl-row-" + group, tabindex: "-1", "data-id": ev.id || "" }, cells);
    this.events.set(tr, ev);
    return tr;
  }

  // A later page may repeat a hit that shares its millisecond with the
  // page boundary (after a segment merge): a row per id, once.
  append(events) {
    const shown = new Set($$("tr.hit-row", this.tbody).map((r) => r.dataset.id).filter(Boolean));
    const frag = document.createDocumentFragment();
    for (const ev of events) {
      if (ev.id && shown.has(ev.id)) continue;
      frag.appendChild(this.row(ev));
    }
    this.tbody.appendChild(frag);
  }

  // Newest first: events come oldest first, each one goes on top.
  prepend(events) {
    for (const ev of events) this.tbody.insertBefore(this.row(ev), this.tbody.firstChild);
  }

  // Keep at most max rows, dropping the oldest (the bottom ones).
  cap(max) {
    const rows = $$("tr.hit-row", this.tbody);
    for (let i = max; i < rows.length; i++) {
      const r = rows[i];
      const d = r.nextElementSibling;
      if (d && d.classList.contains("hit-detail-row")) d.remove();
      if (this.selected === r) this.selected = null;
      r.remove();
    }
  }

  eventOf(row) {
    return this.events.get(row);
  }

  isOpen(row) {
    const d = row.nextElementSibling;
    return !!(d && d.classList.contains("hit-detail-row"));
  }

  toggle(row) {
    if (this.isOpen(row)) this.collapse(row);
    else this.expand(row);
  }

  collapse(row) {
    if (this.isOpen(row)) row.nextElementSibling.remove();
    row.classList.remove("open");
  }

  collapseAll() {
    let any = false;
    for (const row of $$("tr.hit-row.open", this.tbody)) { this.collapse(row); any = true; }
    return any;
  }

  expand(row) {
    if (this.isOpen(row)) return;
    const ev = this.eventOf(row);
    const span = row.children.length;
    const actions = h("div", { class: "detail-actions" }, [
      h("button", {
        type: "button", class: "copy-json",
        on: { click: () => copyText(JSON.stringify(ev, null, 2), "event JSON") },
      }, "copy JSON"),
    ]);
    const tk = traceKey(ev);
    if (tk) {
      actions.appendChild(h("button", {
        type: "button", class: "trace-btn", title: `every event with ${tk.field} ${tk.id}`,
        on: { click: () => this.opts.onTrace(tk) },
      }, `trace ${tk.field === "trace_id" ? "trace_id" : "request"}`));
    }
    actions.appendChild(h("button", {
      type: "button", class: "detail-close", on: { click: () => { this.collapse(row); row.focus(); } },
    }, "close"));
    const detail = h("div", { class: "hit-detail" }, [actions, jsonTree(ev)]);
    const tr = h("tr", { class: "hit-detail-row" }, h("td", { colspan: span }, detail));
    row.after(tr);
    row.classList.add("open");
  }

  select(row) {
    if (this.selected) this.selected.classList.remove("selected");
    this.selected = row;
    if (row) {
      row.classList.add("selected");
      row.scrollIntoView({ block: "nearest" });
    }
  }

  // j/k: move the selection by delta rows.
  move(delta) {
    const rows = $$("tr.hit-row", this.tbody);
    if (!rows.length) return;
    let i = this.selected ? rows.indexOf(this.selected) : -1;
    i = i < 0 ? (delta > 0 ? 0 : rows.length - 1) : Math.min(rows.length - 1, Math.max(0, i + delta));
    this.select(rows[i]);
  }

  toggleSelected() {
    if (this.selected && this.selected.isConnected) this.toggle(this.selected);
  }
}
