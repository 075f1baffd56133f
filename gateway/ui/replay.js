// Admin: replay archived ranges back into the hot tier. Start a job, watch
// its progress (polled every second while one is active), cancel, history.
import { api, get } from "./api.js";
import { h, clear, fmtNum, fmtBytes, toast } from "./dom.js";

const el = (id) => document.getElementById(id);
const ACTIVE = ["queued", "running"];
let timer = null;
let visible = false;

export function initReplay() {
  el("replay-form").addEventListener("submit", (e) => {
    e.preventDefault();
    start();
  });
}

export function enterReplay(types) {
  visible = true;
  const dl = clear(el("replay-types"));
  for (const t of types || []) dl.appendChild(h("option", { value: t }));
  load();
}

export function leaveReplay() {
  visible = false;
  clearTimeout(timer);
  timer = null;
}

function msg(text, isError) {
  const s = el("replay-status");
  s.textContent = text;
  s.className = isError ? "error-text" : "dim";
}

async function start() {
  const body = { from: el("replay-from").value.trim(), to: el("replay-to").value.trim() };
  const type = el("replay-type").value.trim();
  const query = el("replay-query").value.trim();
  if (type) body.type = type;
  if (query) body.query = query;
  if (!body.from || !body.to) {
    msg("from and to are needed", true);
    return;
  }
  el("replay-start").disabled = true;
  try {
    const job = await api("POST", "/api/v1/replay", { json: body });
    msg(`started job ${job && job.id ? job.id : ""}`);
    toast("Replay started");
  } catch (e) {
    msg(e.message, true);
  } finally {
    el("replay-start").disabled = false;
  }
  load();
}

async function cancel(id) {
  try {
    await api("DELETE", "/api/v1/replay/" + encodeURIComponent(id));
    toast("Replay cancelled");
  } catch (e) {
    toast(e.message, "error");
  }
  load();
}

async function load() {
  clearTimeout(timer);
  timer = null;
  let data;
  try {
    data = await get("/api/v1/replay");
  } catch (e) {
    if (e.status === 401) return;
    clear(el("replay-active")).appendChild(h("div", { class: "error-text" }, e.message));
    schedule();
    return;
  }
  if (!visible) return;
  const jobs = ((data && data.jobs) || []).slice().sort((a, b) => String(b.id).localeCompare(String(a.id)));
  const active = jobs.filter((j) => ACTIVE.includes(progressOf(j).state || j.state));
  const done = jobs.filter((j) => !active.includes(j));
  render(el("replay-active"), active, "no replay running");
  render(el("replay-history"), done, "no finished replays");
  if (active.length) schedule();
}

function schedule() {
  if (!visible) return;
  clearTimeout(timer);
  timer = setTimeout(load, 1000);
}

// The job's progress numbers: nested under `progress` or flat on the job.
function progressOf(job) {
  return Object.assign({}, job, job.progress && typeof job.progress === "object" ? job.progress : {});
}

function render(box, jobs, empty) {
  clear(box);
  if (!jobs.length) {
    box.appendChild(h("div", { class: "dim" }, empty));
    return;
  }
  for (const job of jobs) {
    const p = progressOf(job);
    const stateName = String(p.state || job.state || "unknown");
    const total = Number(p.objects_total) || 0;
    const doneObjs = Number(p.objects_done) || 0;
    const pct = stateName === "done" ? 100 : total ? Math.min(100, Math.round((100 * doneObjs) / total)) : 0;
    const fill = h("div", { class: "progress-fill state-" + stateName.replace(/[^a-z]/g, "") });
    fill.style.width = pct + "%";
    const facts = [
      `${fmtNum(doneObjs)}/${fmtNum(total)} objects`,
      p.bytes_read !== undefined ? fmtBytes(p.bytes_read) : null,
      p.events_read !== undefined ? `${fmtNum(p.events_read)} read` : null,
      p.events_indexed !== undefined ? `${fmtNum(p.events_indexed)} indexed` : null,
      p.duplicates_skipped !== undefined ? `${fmtNum(p.duplicates_skipped)} duplicates` : null,
      p.events_not_matching ? `${fmtNum(p.events_not_matching)} not matching` : null,
      p.events_per_sec ? `${fmtNum(p.events_per_sec)}/s` : null,
      p.eta_seconds !== undefined && p.eta_seconds !== null && ACTIVE.includes(stateName) ? `ETA ${fmtNum(p.eta_seconds)} s` : null,
      p.error_count ? `${fmtNum(p.error_count)} errors` : null,
    ].filter(Boolean);
    const errors = Array.isArray(p.errors) ? p.errors : [];
    box.appendChild(h("div", { class: "replay-job", "data-id": String(job.id || ""), "data-state": stateName }, [
      h("div", { class: "job-head" }, [
        h("span", { class: "job-state state-" + stateName.replace(/[^a-z]/g, "") }, stateName),
        h("span", { class: "mono small", title: String(job.id || "") }, String(job.id || "")),
        h("span", { class: "job-what" }, [
          p.type || p.log_type ? String(p.type || p.log_type) : "all types",
          ` · ${String(p.from || "")} → ${String(p.to || "")}`,
          p.query ? h("span", { class: "mono" }, " · " + String(p.query)) : null,
        ]),
        ACTIVE.includes(stateName)
          ? h("button", { type: "button", class: "danger small replay-cancel", on: { click: (e) => { e.target.disabled = true; cancel(job.id); } } }, "cancel")
          : null,
      ]),
      h("div", { class: "progress", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": String(pct) }, fill),
      h("div", { class: "small dim job-facts" }, facts.join(" · ")),
      errors.length ? h("ul", { class: "job-errors small" }, errors.slice(0, 20).map((e) => h("li", { class: "error-text" }, String(e)))) : null,
    ]));
  }
}
