// Explore: query bar, time picker, histogram, results, field sidebar, live
// tail, request trace, saved searches and "copy as" commands.
import { get } from "./api.js";
import { h, $, $$, clear, show, fmtNum, copyText, isTyping, toast } from "./dom.js";
import { state, writeUrl, resolveTime, isRelative, loadHistory, pushHistory, clearHistory } from "./state.js";
import { addClause, clause, bareTerms, eventFieldNames, shq } from "./query.js";
import { renderHistogram, redrawHistogram } from "./histogram.js";
import { ResultList } from "./results.js";
import { Sidebar } from "./sidebar.js";
import { showTrace, hideTrace } from "./trace.js";
import { Tail } from "./tail.js";
import { Saved } from "./saved.js";

const PAGE = 100;

let list, sidebar, tail, saved;
let seq = 0;
let next = null;
let loaded = false;
let liveShown = false; // the list holds tailed events, not a search's
let knownTypes = [];

const el = (id) => document.getElementById(id);

export function initExplore() {
  list = new ResultList(el("results"), {
    cols: () => state.cols,
    terms: () => bareTerms(state.q),
    onRemoveCol: removeCol,
    onTrace: openTrace,
  });
  sidebar = new Sidebar(el("sidebar"), {
    params: () => ({ q: state.q, from: state.from, to: state.to, type: state.type }),
    cols: () => state.cols,
    onAddCol: addCol,
    onFilter: (field, value, negate) => {
      closeDrawer();
      state.q = addClause(el("query").value, clause(field, value, negate));
      el("query").value = state.q;
      submit(true);
    },
  });
  tail = new Tail(list, {
    status: el("tail-status"), pause: el("tail-pause"), pausedCount: el("tail-paused-count"),
    skipped: el("tail-skipped"), count: el("tail-count"),
  }, { onError: showQueryError });
  saved = new Saved(el("saved-panel"), {
    current: () => ({ query: state.q, type: state.type || null, range: currentRange(), columns: state.cols }),
    open: (it) => {
      state.q = it.query || "";
      state.type = it.type || "";
      if (typeof it.range === "string") { state.from = it.range; state.to = "now"; }
      else if (it.range && typeof it.range === "object") { state.from = it.range.from || "now-1h"; state.to = it.range.to || "now"; }
      state.cols = Array.isArray(it.columns) ? it.columns.slice() : [];
      el("saved-panel").hidden = true;
      if (state.view !== "live") state.view = "explore";
      syncInputs();
      list.header();
      submit(true);
    },
  });

  el("query-form").addEventListener("submit", (e) => {
    e.preventDefault();
    submit(true);
  });
  el("type").addEventListener("change", () => submit(true));
  for (const b of $$(".preset")) {
    b.addEventListener("click", () => {
      state.from = b.dataset.range;
      state.to = "now";
      if (state.view === "live" || state.view === "trace") state.view = "explore";
      syncInputs();
      submit(true);
    });
  }
  el("time-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const f = el("time-from").value.trim() || "now-1h";
    const t = el("time-to").value.trim() || "now";
    if (resolveTime(f) === null || resolveTime(t) === null) {
      toast("from/to: RFC 3339, epoch ms, now or now-15m", "error");
      return;
    }
    state.from = f;
    state.to = t;
    if (state.view === "live") state.view = "explore";
    submit(true);
  });
  el("tail-toggle").addEventListener("click", () => {
    state.view = state.view === "live" ? "explore" : "live";
    submit(true);
  });
  el("load-more").addEventListener("click", loadMore);
  el("trace-close").addEventListener("click", closeTrace);
  el("copy-curl").addEventListener("click", () => share(curlCommand(), "curl command"));
  el("copy-cli").addEventListener("click", () => share(cliCommand(), "logway search command"));
  el("history-btn").addEventListener("click", (e) => {
    e.stopPropagation();
    toggleHistory();
  });
  el("saved-btn").addEventListener("click", () => {
    const p = el("saved-panel");
    p.hidden = !p.hidden;
    el("saved-btn").setAttribute("aria-expanded", String(!p.hidden));
    if (!p.hidden) saved.load();
  });
  el("saved-close").addEventListener("click", () => { el("saved-panel").hidden = true; });
  el("sidebar-toggle").addEventListener("click", () => {
    document.body.classList.toggle("sidebar-open");
  });
  el("sidebar-close").addEventListener("click", closeDrawer);
  document.addEventListener("click", (e) => {
    const menu = el("history-menu");
    if (!menu.hidden && !menu.contains(e.target)) menu.hidden = true;
    // The phone-width drawer closes on a click outside it.
    if (document.body.classList.contains("sidebar-open") && !el("sidebar").contains(e.target) &&
        !el("sidebar-toggle").contains(e.target)) closeDrawer();
  });
  if (window.ResizeObserver) new ResizeObserver(() => redrawHistogram()).observe(el("histogram"));
}

// Called when the URL (or sign-in) puts us on explore, live or trace.
export function enterExplore(fromUrl) {
  syncInputs();
  list.header();
  if (state.view === "live") {
    startLive();
  } else {
    tail.stop();
    applyMode();
    if (!loaded || fromUrl || liveShown) run();
  }
  if (state.view === "trace") showTrace(el("trace-view"), { field: state.tf, id: state.trace });
  else hideTrace(el("trace-view"));
  applyMode();
}

export function leaveExplore() {
  tail.stop();
}

// Signed out: forget everything shown.
export function resetExplore() {
  tail.stop();
  list.clear();
  loaded = false;
  next = null;
  clear(el("histogram"));
  clear(el("histogram-legend"));
  el("hits-total").textContent = "";
  hideTrace(el("trace-view"));
  sidebar.apiFields = [];
  sidebar.setHitFields([]);
  el("saved-panel").hidden = true;
  el("share-box").hidden = true;
}

export function setTypes(types) {
  knownTypes = [...new Set(types.filter(Boolean))].sort();
  syncTypeSelect();
}

function closeDrawer() {
  document.body.classList.remove("sidebar-open");
}

function syncTypeSelect() {
  const sel = el("type");
  const want = [...knownTypes];
  if (state.type && !want.includes(state.type)) want.push(state.type);
  clear(sel).appendChild(h("option", { value: "" }, "all types"));
  for (const t of want) sel.appendChild(h("option", { value: t }, t));
  sel.value = state.type || "";
}

function syncInputs() {
  el("query").value = state.q;
  el("time-from").value = state.from;
  el("time-to").value = state.to;
  syncTypeSelect();
  for (const b of $$(".preset")) {
    b.classList.toggle("active", state.view !== "live" && state.to === "now" && b.dataset.range === state.from);
  }
}

function applyMode() {
  const live = state.view === "live";
  const tracing = state.view === "trace";
  document.body.dataset.mode = live ? "live" : tracing ? "trace" : "search";
  el("tail-toggle").classList.toggle("active", live);
  el("tail-toggle").setAttribute("aria-pressed", String(live));
  show(el("tail-bar"), live);
  show(el("histogram-box"), !live);
  show(el("load-more"), !live && !!next);
  show(el("explore-main"), !tracing);
  for (const b of $$(".preset")) {
    b.classList.toggle("active", !live && state.to === "now" && b.dataset.range === state.from);
  }
}

function readForm() {
  state.q = el("query").value.trim();
  state.type = el("type").value;
}

// A new search from the form: into the URL (and history), then run.
function submit(push) {
  readForm();
  el("history-menu").hidden = true;
  pushHistory(state.q);
  if (state.view === "trace") state.view = "explore";
  writeUrl(push);
  syncInputs();
  hideTrace(el("trace-view"));
  if (state.view === "live") startLive();
  else {
    tail.stop();
    applyMode();
    run();
  }
}

function startLive() {
  hideQueryError();
  next = null;
  list.header();
  applyMode();
  liveShown = true;
  tail.start(state.q, state.type);
  sidebar.loadFields();
}

function params() {
  return { q: state.q, from: state.from, to: state.to, type: state.type };
}

export async function run() {
  const mine = ++seq;
  loaded = true;
  liveShown = false;
  hideQueryError();
  el("hits-total").textContent = "searching…";
  el("results-empty").hidden = true;
  const p = params();
  const fromMs = resolveTime(p.from);
  const toMs = resolveTime(p.to);
  const search = get("/api/v1/search", Object.assign({ limit: PAGE }, p));
  const histo = get("/api/v1/histogram", Object.assign({ by: "level" }, p));
  // Handled below, after the search: marked now so that a histogram that
  // fails first (a bad query) is not an unhandled rejection meanwhile.
  histo.catch(() => {});
  sidebar.loadFields();
  let data;
  try {
    data = await search;
  } catch (e) {
    if (mine !== seq) return;
    list.clear();
    next = null;
    applyMode();
    el("hits-total").textContent = "";
    el("hits-total").dataset.total = "";
    el("took").textContent = "";
    clear(el("histogram"));
    clear(el("histogram-legend"));
    if (e.status === 400) showQueryError(e);
    else if (e.status !== 401) showQueryError(e);
    return;
  }
  if (mine !== seq) return;
  list.clear();
  list.append(data.hits || []);
  next = data.next || null;
  applyMode();
  const total = Number(data.total) || 0;
  el("hits-total").textContent = `${fmtNum(total)} hits`;
  el("hits-total").dataset.total = String(total);
  el("took").textContent = data.took_ms !== undefined ? `${data.took_ms} ms` : "";
  el("results-empty").hidden = total > 0 || (data.hits || []).length > 0;
  updateHitFields();
  sidebar.refreshValues();
  try {
    const hd = await histo;
    if (mine !== seq) return;
    renderHistogram(el("histogram"), el("histogram-legend"), hd, { fromMs, toMs }, zoom);
  } catch (e) {
    if (mine !== seq) return;
    clear(el("histogram")).appendChild(h("div", { class: "error-text" }, "histogram: " + e.message));
  }
}

async function loadMore() {
  if (!next) return;
  const mine = seq;
  const btn = el("load-more");
  btn.disabled = true;
  try {
    const data = await get("/api/v1/search", Object.assign({ limit: PAGE, search_after: next }, params()));
    if (mine !== seq) return;
    list.append(data.hits || []);
    next = data.next || null;
    updateHitFields();
  } catch (e) {
    if (e.status !== 401) toast(e.message, "error");
  } finally {
    btn.disabled = false;
    applyMode();
  }
}

function updateHitFields() {
  const names = new Set();
  for (const r of $$("tr.hit-row", el("results-body"))) {
    const ev = list.eventOf(r);
    if (ev) eventFieldNames(ev, names);
  }
  sidebar.setHitFields(names);
}

function zoom(fromMs, toMs) {
  state.from = new Date(fromMs).toISOString();
  state.to = new Date(toMs).toISOString();
  syncInputs();
  submit(true);
}

function rerenderRows() {
  const events = $$("tr.hit-row", el("results-body")).map((r) => list.eventOf(r));
  list.header();
  list.clear();
  list.append(events);
  if (state.view === "live") tail.paint();
}

function addCol(name) {
  if (!state.cols.includes(name)) state.cols.push(name);
  writeUrl(false);
  rerenderRows();
  sidebar.render();
}

function removeCol(name) {
  state.cols = state.cols.filter((c) => c !== name);
  writeUrl(false);
  rerenderRows();
  sidebar.render();
}

function openTrace(key) {
  state.view = "trace";
  state.trace = key.id;
  state.tf = key.field;
  writeUrl(true);
  applyMode();
  showTrace(el("trace-view"), key);
}

export function closeTrace() {
  hideTrace(el("trace-view"));
  state.view = "explore";
  state.trace = "";
  writeUrl(true);
  applyMode();
  if (!loaded) run();
}

function showQueryError(e) {
  const box = el("query-error");
  el("query-error-msg").textContent = e.message;
  const pre = el("query-error-pointer");
  if (typeof e.position === "number" && e.position >= 0) {
    el("query-error-text").textContent = state.q;
    el("query-error-caret").textContent = " ".repeat(Math.min(e.position, 2000)) + "^";
    pre.hidden = false;
  } else {
    pre.hidden = true;
  }
  el("query").setAttribute("aria-invalid", "true");
  box.hidden = false;
}

function hideQueryError() {
  el("query-error").hidden = true;
  el("query").removeAttribute("aria-invalid");
}

function currentRange() {
  if (state.to === "now" && isRelative(state.from)) return state.from;
  return { from: state.from, to: state.to };
}

function enc(v) {
  return encodeURIComponent(v).replace(/[!'()*]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase());
}

function curlCommand() {
  const parts = [["q", state.q], ["from", state.from], ["to", state.to], ["type", state.type], ["limit", String(PAGE)]]
    .filter(([, v]) => v !== "" && v !== null && v !== undefined)
    .map(([k, v]) => k + "=" + enc(v));
  const url = location.origin + "/api/v1/search?" + parts.join("&");
  return `curl -s -H "Authorization: Bearer $LOGWAY_KEY" '${url}'`;
}

function arg(v) {
  return /^[\w.:+\-]+$/.test(v) ? v : shq(v);
}

function cliCommand() {
  let cmd = `logway search ${shq(state.q)} --from ${arg(state.from)}`;
  if (state.to && state.to !== "now") cmd += ` --to ${arg(state.to)}`;
  if (state.type) cmd += ` --type ${arg(state.type)}`;
  return cmd;
}

function share(text, what) {
  readForm();
  const box = el("share-box");
  el("share-output").value = text;
  box.hidden = false;
  copyText(text, what);
}

function toggleHistory() {
  const menu = el("history-menu");
  if (!menu.hidden) {
    menu.hidden = true;
    return;
  }
  clear(menu);
  const items = loadHistory();
  if (!items.length) menu.appendChild(h("div", { class: "dim" }, "no recent queries"));
  for (const q of items) {
    menu.appendChild(h("button", {
      type: "button", class: "history-item mono",
      on: { click: () => { el("query").value = q; menu.hidden = true; submit(true); } },
    }, q));
  }
  if (items.length) {
    menu.appendChild(h("button", {
      type: "button", class: "history-clear small",
      on: { click: () => { clearHistory(); menu.hidden = true; } },
    }, "clear history"));
  }
  menu.hidden = false;
}

// Keys while on explore/live/trace; true when handled.
export function exploreKey(e) {
  const typing = isTyping(e.target);
  if (e.key === "Escape") {
    if (document.body.classList.contains("sidebar-open")) { closeDrawer(); return true; }
    if (!el("history-menu").hidden) { el("history-menu").hidden = true; return true; }
    if (!el("saved-panel").hidden) { el("saved-panel").hidden = true; return true; }
    if (state.view === "trace") { closeTrace(); return true; }
    if (typing) { e.target.blur(); return true; }
    return list.collapseAll();
  }
  if (typing || e.ctrlKey || e.metaKey || e.altKey) return false;
  if (e.key === "/") { el("query").focus(); el("query").select(); return true; }
  if (state.view === "trace") return false;
  if (e.key === "j") { list.move(1); return true; }
  if (e.key === "k") { list.move(-1); return true; }
  if ((e.key === "Enter" || e.key === "o") && list.selected) {
    if (e.target && (e.target.tagName === "BUTTON" || e.target.tagName === "A" || e.target.tagName === "SUMMARY")) return false;
    list.toggleSelected();
    return true;
  }
  return false;
}
