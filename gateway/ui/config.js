// Admin: the tenant's routes, limits and the gateway's listeners, read-only.
import { get } from "./api.js";
import { h, clear, fmtNum, fmtBytes } from "./dom.js";
import { jsonTree } from "./jsontree.js";

const el = (id) => document.getElementById(id);

function text(v) {
  if (v === null || v === undefined) return h("span", { class: "dim" }, "–");
  if (typeof v === "number") return fmtNum(v);
  if (typeof v === "boolean") return v ? "yes" : "no";
  if (typeof v === "object") return Object.keys(v).length ? h("span", { class: "mono small" }, JSON.stringify(v)) : h("span", { class: "dim" }, "none");
  return String(v);
}

function filterNames(filters) {
  if (!Array.isArray(filters) || !filters.length) return h("span", { class: "dim" }, "none");
  return filters.map((f) => (f && typeof f === "object" ? f.name : String(f))).join(" → ");
}

function kvTable(obj, id) {
  const entries = Object.entries(obj || {});
  if (!entries.length) return h("p", { class: "dim" }, "none set");
  return h("table", { class: "grid kv-table", id }, h("tbody", {}, entries.map(([k, v]) =>
    h("tr", {}, [h("th", { scope: "row" }, k.replace(/_/g, " ")), h("td", { class: "mono" }, /bytes$/.test(k) && typeof v === "number" ? fmtBytes(v) : text(v))]))));
}

export async function enterConfig() {
  const root = clear(el("config-body"));
  root.appendChild(h("p", { class: "dim" }, "loading…"));
  let data;
  try {
    data = await get("/api/v1/config");
  } catch (e) {
    clear(root).appendChild(h("p", { class: "error-text" }, e.message));
    return;
  }
  clear(root);
  const tenant = (data && data.tenant) || {};
  root.appendChild(h("h3", {}, ["Tenant ", h("span", { class: "mono", id: "config-tenant" }, String(tenant.name || ""))]));

  const routes = Array.isArray(tenant.routes) ? tenant.routes : [];
  root.appendChild(h("h3", {}, "Routes"));
  root.appendChild(h("table", { class: "grid", id: "config-routes" }, [
    h("thead", {}, h("tr", {}, ["path", "type", "class", "filters", "limits"].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, routes.length ? routes.map((r) => h("tr", { class: "route-row" }, [
      h("td", { class: "mono" }, String(r.path || "")),
      h("td", { class: "mono" }, String(r.type || "")),
      h("td", {}, text(r.class)),
      h("td", { class: "mono" }, filterNames(r.filters)),
      h("td", {}, text(r.limits)),
    ])) : h("tr", {}, h("td", { colspan: 5, class: "dim" }, "no routes"))),
  ]));

  root.appendChild(h("h3", {}, "Tenant limits"));
  root.appendChild(kvTable(tenant.limits, "config-limits"));

  const rest = Object.fromEntries(Object.entries(tenant).filter(([k]) => !["name", "routes", "limits"].includes(k)));
  if (Object.keys(rest).length) {
    root.appendChild(h("h3", {}, "Other tenant settings"));
    root.appendChild(jsonTree(rest));
  }

  // Whatever else the gateway tells (read-only), as a tree.
  const other = Object.fromEntries(Object.entries(data || {}).filter(([k]) => !["tenant", "listeners"].includes(k)));
  for (const [k, v] of Object.entries(other)) {
    root.appendChild(h("h3", {}, k.replace(/_/g, " ")));
    root.appendChild(v && typeof v === "object" && !Array.isArray(v) ? kvTable(v, "config-" + k) : jsonTree(v));
  }

  const listeners = Array.isArray(data && data.listeners) ? data.listeners : [];
  root.appendChild(h("h3", {}, "Listeners"));
  root.appendChild(h("table", { class: "grid", id: "config-listeners" }, [
    h("thead", {}, h("tr", {}, ["kind", "address", "TLS"].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, listeners.length ? listeners.map((l) => h("tr", { class: "listener-row" }, [
      h("td", {}, String(l.kind || "")),
      h("td", { class: "mono" }, String(l.addr || "")),
      h("td", {}, l.tls ? "TLS" : "plain"),
    ])) : h("tr", {}, h("td", { colspan: 3, class: "dim" }, "none"))),
  ]));
}
