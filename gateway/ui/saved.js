// Saved searches of the tenant: save the current one (name + note), list,
// open, delete.
import { api, get } from "./api.js";
import { h, $, clear, fmtTime, toast, confirmButton } from "./dom.js";

export class Saved {
  // hooks: {current(): {query, type, range, columns}, open(saved)}
  constructor(root, hooks) {
    this.root = root;
    this.hooks = hooks;
    this.list = $("#saved-list", root);
    this.form = $("#saved-form", root);
    this.err = $("#saved-error", root);
    this.form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.save();
    });
  }

  async load() {
    clear(this.list).appendChild(h("li", { class: "dim" }, "loading…"));
    let data;
    try {
      data = await get("/api/v1/saved");
    } catch (e) {
      clear(this.list).appendChild(h("li", { class: "error-text" }, e.message));
      return;
    }
    this.render((data && data.saved) || []);
  }

  render(items) {
    clear(this.list);
    if (!items.length) {
      this.list.appendChild(h("li", { class: "dim" }, "no saved searches yet"));
      return;
    }
    for (const it of items) {
      const range = typeof it.range === "string" ? it.range
        : it.range && typeof it.range === "object" ? `${it.range.from || "…"} → ${it.range.to || "now"}` : "";
      this.list.appendChild(h("li", { class: "saved-item", "data-id": it.id || "" }, [
        h("div", { class: "saved-head" }, [
          h("button", {
            type: "button", class: "saved-open link-like", title: "open this search",
            on: { click: () => this.hooks.open(it) },
          }, String(it.name || "(unnamed)")),
          confirmButton("delete", "really delete?", () => this.remove(it), { class: "danger small saved-delete" }),
        ]),
        it.note ? h("div", { class: "saved-note" }, String(it.note)) : null,
        h("div", { class: "saved-query mono" }, String(it.query || "(everything)")),
        h("div", { class: "dim small" }, [
          [it.type ? "type " + it.type : "all types", range, (it.columns || []).length ? "columns " + it.columns.join(", ") : ""]
            .filter(Boolean).join(" · "),
          it.created_at ? " · " + fmtTime(it.created_at) : "",
        ]),
      ]));
    }
  }

  async save() {
    const name = $("#saved-name", this.root).value.trim();
    const note = $("#saved-note", this.root).value.trim();
    this.err.hidden = true;
    if (!name) {
      this.err.textContent = "a name is needed";
      this.err.hidden = false;
      return;
    }
    const cur = this.hooks.current();
    const body = { name, query: cur.query };
    if (note) body.note = note;
    if (cur.type) body.type = cur.type;
    if (cur.range) body.range = cur.range;
    if (cur.columns && cur.columns.length) body.columns = cur.columns;
    try {
      await api("POST", "/api/v1/saved", { json: body });
    } catch (e) {
      this.err.textContent = e.message;
      this.err.hidden = false;
      return;
    }
    $("#saved-name", this.root).value = "";
    $("#saved-note", this.root).value = "";
    toast(`Saved "${name}"`);
    this.load();
  }

  async remove(it) {
    try {
      await api("DELETE", "/api/v1/saved/" + encodeURIComponent(it.id));
    } catch (e) {
      toast(e.message, "error");
      return;
    }
    this.load();
  }
}
