// Field sidebar: names from /api/v1/fields plus the keys of the shown hits;
// a click loads a field's top values (+ to require, − to exclude a value).
import { get } from "./api.js";
import { h, $, clear, fmtNum } from "./dom.js";
import { PROMOTED } from "./query.js";

const PROMOTED_ORDER = ["level", "service", "type", "host", "request_id", "outcome", "reason", "message", "id", "timestamp", "received_at"];
const MAX_SHOWN = 400;

export class Sidebar {
  // opts: {params(): {q, from, to, type}, onFilter(field, value, negate), onAddCol(field), cols()}
  constructor(root, opts) {
    this.root = root;
    this.list = $("#field-list", root);
    this.filter = $("#field-filter", root);
    this.opts = opts;
    this.apiFields = [];
    this.hitFields = new Set();
    this.openField = null;
    this.seq = 0;
    this.filter.addEventListener("input", () => this.render());
  }

  async loadFields() {
    const p = this.opts.params();
    const seq = ++this.seq;
    try {
      const data = await get("/api/v1/fields", { type: p.type, from: p.from, to: p.to });
      if (seq !== this.seq) return;
      this.apiFields = ((data && data.fields) || []).map((f) => typeof f === "string" ? { name: f } : f);
    } catch (e) {
      if (seq !== this.seq) return;
      this.apiFields = [];
      this.error = e.message;
    }
    this.render();
  }

  setHitFields(names) {
    this.hitFields = new Set(names);
    this.render();
  }

  names() {
    const map = new Map();
    for (const f of this.apiFields) if (f && f.name) map.set(f.name, { name: f.name, promoted: !!f.promoted || PROMOTED.includes(f.name) });
    for (const n of this.hitFields) if (!map.has(n)) map.set(n, { name: n, promoted: PROMOTED.includes(n), fromHits: true });
    const all = [...map.values()].filter((f) => f.name !== "tenant");
    const rank = (f) => f.promoted ? (PROMOTED_ORDER.indexOf(f.name) + 1 || 50) : 100;
    all.sort((a, b) => rank(a) - rank(b) || a.name.localeCompare(b.name));
    return all;
  }

  render() {
    clear(this.list);
    const needle = this.filter.value.trim().toLowerCase();
    const fields = this.names().filter((f) => !needle || f.name.toLowerCase().includes(needle));
    const cols = this.opts.cols();
    for (const f of fields.slice(0, MAX_SHOWN)) {
      const li = h("li", { class: "field" + (f.promoted ? " promoted" : ""), "data-field": f.name }, [
        h("div", { class: "field-head" }, [
          h("button", {
            type: "button", class: "field-name", title: "top values of " + f.name,
            "aria-expanded": this.openField === f.name ? "true" : "false",
            on: { click: () => this.toggle(f.name) },
          }, f.name),
          h("button", {
            type: "button", class: "field-addcol icon" + (cols.includes(f.name) ? " active" : ""),
            title: cols.includes(f.name) ? "already a column" : "add as column", "aria-label": "add " + f.name + " as column",
            on: { click: () => this.opts.onAddCol(f.name) },
          }, "⊞"),
        ]),
      ]);
      this.list.appendChild(li);
      if (this.openField === f.name) this.loadValues(li, f.name);
    }
    if (fields.length > MAX_SHOWN) {
      this.list.appendChild(h("li", { class: "dim" }, `${fields.length - MAX_SHOWN} more: filter by name`));
    }
    if (!fields.length) this.list.appendChild(h("li", { class: "dim" }, needle ? "no field matches" : "no fields"));
  }

  toggle(name) {
    this.openField = this.openField === name ? null : name;
    this.render();
  }

  // The open field's values are reloaded when the query changes.
  refreshValues() {
    if (this.openField) this.render();
  }

  async loadValues(li, field) {
    const box = h("div", { class: "field-values" }, h("div", { class: "dim" }, "loading…"));
    li.appendChild(box);
    const p = this.opts.params();
    let data;
    try {
      data = await get("/api/v1/fields/values", { field, q: p.q, from: p.from, to: p.to, type: p.type, size: 10 });
    } catch (e) {
      clear(box).appendChild(h("div", { class: "error-text" }, e.message));
      return;
    }
    clear(box);
    const values = (data && data.values) || [];
    const total = (data && data.total) || values.reduce((a, v) => a + (v.count || 0), 0);
    if (!values.length) {
      box.appendChild(h("div", { class: "dim" }, "no values in range"));
      return;
    }
    const ul = h("ul", { class: "value-list" });
    for (const v of values) {
      const text = v.value === null || v.value === undefined ? "" : typeof v.value === "object" ? JSON.stringify(v.value) : String(v.value);
      const pct = total ? Math.max(1, Math.round((100 * (v.count || 0)) / total)) : 0;
      const bar = h("span", { class: "value-bar" });
      bar.style.width = pct + "%";
      ul.appendChild(h("li", { class: "field-value-row", "data-value": text }, [
        bar,
        h("button", {
          type: "button", class: "field-value", title: `${field}:"${text}" (${fmtNum(v.count)})`,
          on: { click: () => this.opts.onFilter(field, text, false) },
        }, text === "" ? h("span", { class: "dim" }, "(empty)") : text),
        h("span", { class: "value-count" }, fmtNum(v.count)),
        h("button", {
          type: "button", class: "value-include icon", title: "require this value", "aria-label": `filter ${field} = value`,
          on: { click: () => this.opts.onFilter(field, text, false) },
        }, "+"),
        h("button", {
          type: "button", class: "value-exclude icon", title: "exclude this value", "aria-label": `exclude ${field} = value`,
          on: { click: () => this.opts.onFilter(field, text, true) },
        }, "−"),
      ]));
    }
    box.appendChild(ul);
    const foot = [`${fmtNum(total)} events`];
    if (data.other) foot.push(`${fmtNum(data.other)} in other values`);
    box.appendChild(h("div", { class: "dim value-foot" }, foot.join(" · ")));
  }
}
