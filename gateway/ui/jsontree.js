// A stored event as a collapsible JSON tree (<details> per object/array),
// with a copy button per value. Text only: keys and values are text nodes.
import { h, copyText } from "./dom.js";

function leafClass(v) {
  if (v === null) return "jt-null";
  return "jt-" + typeof v;
}

function leafText(v) {
  if (typeof v === "string") return JSON.stringify(v);
  return String(v);
}

function copyBtn(value, path) {
  const text = typeof value === "string" ? value : JSON.stringify(value, null, 2);
  return h("button", {
    type: "button",
    class: "jt-copy icon",
    title: "copy " + (path || "value"),
    "aria-label": "copy " + (path || "value"),
    on: { click: (e) => { e.stopPropagation(); copyText(text, path || "value"); } },
  }, "⧉");
}

function node(key, value, path, depth) {
  const keyEl = key === null ? null : h("span", { class: "jt-key" }, [key, h("span", { class: "jt-colon" }, ": ")]);
  if (value !== null && typeof value === "object") {
    const isArr = Array.isArray(value);
    const entries = isArr ? value.map((v, i) => [String(i), v]) : Object.entries(value);
    const summary = h("summary", {}, [
      keyEl,
      h("span", { class: "jt-brace" }, isArr ? `[${entries.length}]` : `{${entries.length}}`),
      copyBtn(value, path),
    ]);
    const kids = h("div", { class: "jt-children" },
      entries.map(([k, v]) => node(k, v, path ? path + "." + k : k, depth + 1)));
    const det = h("details", { class: "jt-node", "data-path": path || "" }, [summary, kids]);
    det.open = depth < 4;
    return det;
  }
  return h("div", { class: "jt-leaf", "data-path": path || "" }, [
    keyEl,
    h("span", { class: "jt-val " + leafClass(value) }, leafText(value)),
    copyBtn(value, path),
  ]);
}

export function jsonTree(value) {
  return h("div", { class: "json-tree" }, node(null, value, "", 0));
}
