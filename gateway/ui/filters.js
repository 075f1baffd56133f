// Admin: the tenant's WASM filters. List, upload a new version, delete,
// and test one on pasted NDJSON events.
import { api, get } from "./api.js";
import { h, $, clear, fmtNum, fmtBytes, fmtTime, toast, confirmButton } from "./dom.js";
import { jsonTree } from "./jsontree.js";

const NAME_RE = /^[a-z0-9_-]{1,64}$/;
const el = (id) => document.getElementById(id);
let testing = null;

export function initFilters() {
  el("filter-file").addEventListener("change", () => {
    const f = el("filter-file").files[0];
    if (f && !el("filter-name").value.trim()) {
      el("filter-name").value = f.name.replace(/\.wasm$/i, "").toLowerCase()
        .replace(/[^a-z0-9_-]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 64);
    }
  });
  el("filter-upload-form").addEventListener("submit", (e) => {
    e.preventDefault();
    upload();
  });
  el("filter-test-run").addEventListener("click", runTest);
  el("filter-test-close").addEventListener("click", () => {
    el("filter-test").hidden = true;
    testing = null;
  });
  el("filters-refresh").addEventListener("click", loadFilters);
}

export function enterFilters() {
  loadFilters();
}

function status(text, isError) {
  const s = el("filter-upload-status");
  s.textContent = text;
  s.className = isError ? "error-text" : "dim";
}

async function upload() {
  const name = el("filter-name").value.trim();
  const file = el("filter-file").files[0];
  if (!NAME_RE.test(name)) {
    status("name: 1-64 characters of a-z, 0-9, _ and -", true);
    return;
  }
  if (!file) {
    status("choose a .wasm component file", true);
    return;
  }
  status(`uploading ${file.name} (${fmtBytes(file.size)})…`);
  el("filter-upload").disabled = true;
  try {
    const bytes = await file.arrayBuffer();
    const f = await api("PUT", "/api/v1/filters/" + encodeURIComponent(name), { body: bytes, contentType: "application/wasm" });
    status(`uploaded ${name}` + (f && f.version !== undefined ? ` version ${f.version}` : ""));
    el("filter-file").value = "";
    el("filter-name").value = "";
    toast(`Filter ${name} uploaded`);
  } catch (e) {
    status(e.message, true);
  } finally {
    el("filter-upload").disabled = false;
  }
  loadFilters();
}

async function loadFilters() {
  const body = el("filters-body");
  let data;
  try {
    data = await get("/api/v1/filters");
  } catch (e) {
    clear(body).appendChild(h("tr", {}, h("td", { colspan: 9, class: "error-text" }, e.message)));
    return;
  }
  clear(body);
  const filters = (data && data.filters) || [];
  if (!filters.length) {
    body.appendChild(h("tr", {}, h("td", { colspan: 9, class: "dim" }, "no filters uploaded")));
  }
  for (const f of filters) {
    const st = f.stats || {};
    const usedBy = Array.isArray(f.used_by) ? f.used_by : [];
    body.appendChild(h("tr", { class: "filter-row", "data-name": f.name }, [
      h("td", { class: "filter-name mono" }, String(f.name)),
      h("td", { class: "num" }, String(f.version ?? "")),
      h("td", { class: "filter-used-by mono" }, usedBy.length ? usedBy.join(", ") : h("span", { class: "dim" }, "unused")),
      h("td", { class: "num" }, fmtNum(st.batches)),
      h("td", { class: "num" }, fmtNum(st.events_in)),
      h("td", { class: "num" }, fmtNum(st.events_dropped)),
      h("td", { class: "num filter-failures" + (st.failures ? " warn-text" : "") }, fmtNum(st.failures)),
      h("td", { class: "filter-last-error" + (st.last_error ? " error-text" : " dim") }, st.last_error ? String(st.last_error) : "none"),
      h("td", { class: "small" }, [fmtTime(f.uploaded_at), h("br"), h("span", { class: "dim", title: String(f.sha256 || "") },
        `${fmtBytes(f.size)} · ${String(f.sha256 || "").slice(0, 12)}`)]),
      h("td", { class: "actions" }, [
        h("button", { type: "button", class: "filter-test-btn small", on: { click: () => openTest(f.name) } }, "test"),
        confirmButton("delete", "really delete?", () => remove(f.name), { class: "danger small filter-delete" }),
      ]),
    ]));
  }
}

async function remove(name) {
  try {
    await api("DELETE", "/api/v1/filters/" + encodeURIComponent(name));
    toast(`Filter ${name} deleted`);
  } catch (e) {
    toast(e.status === 409 ? `${name} is used by a route: ${e.message}` : e.message, "error");
  }
  loadFilters();
}

function openTest(name) {
  testing = name;
  el("filter-test-title").textContent = "Test " + name;
  clear(el("filter-test-results"));
  el("filter-test").hidden = false;
  el("filter-test-input").focus();
}

async function runTest() {
  if (!testing) return;
  const name = testing;
  const input = el("filter-test-input").value;
  const out = clear(el("filter-test-results"));
  if (!input.trim()) {
    out.appendChild(h("div", { class: "error-text" }, "paste NDJSON events, one per line"));
    return;
  }
  out.appendChild(h("div", { class: "dim" }, "running…"));
  let data;
  try {
    data = await api("POST", "/api/v1/filters/" + encodeURIComponent(name) + "/test", { body: input, contentType: "application/x-ndjson" });
  } catch (e) {
    clear(out).appendChild(h("div", { class: "error-text" }, e.message));
    return;
  }
  clear(out);
  const lines = input.split("\n").filter((l) => l.trim());
  const results = (data && data.results) || [];
  out.appendChild(h("div", { class: "dim" }, `${results.length} results for ${lines.length} input lines`));
  results.forEach((r, i) => {
    const events = Array.isArray(r.events) ? r.events : [];
    out.appendChild(h("div", { class: "test-result", "data-verdict": r.verdict || "" }, [
      h("div", { class: "test-head" }, [
        h("span", { class: "verdict verdict-" + String(r.verdict || "unknown").replace(/[^a-z]/g, "") }, String(r.verdict || "?")),
        h("span", { class: "mono small dim test-input" }, lines[i] !== undefined ? lines[i].slice(0, 300) : ""),
      ]),
      r.error ? h("div", { class: "error-text" }, String(r.error)) : null,
      events.length ? h("div", { class: "test-events" }, events.map((ev) => jsonTree(ev))) : null,
    ]));
  });
}
