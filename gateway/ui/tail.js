// Live tail over Server-Sent Events: new events on top, pause/resume, the
// server's skipped count, at most MAX_ROWS rows (the oldest dropped).
import { get, qs } from "./api.js";
import { fmtNum } from "./dom.js";

export const MAX_ROWS = 2000;

export class Tail {
  // els: {status, pause, pausedCount, skipped, count}; list: ResultList.
  // hooks: {onEvents(events), onError(err)}
  constructor(list, els, hooks) {
    this.list = list;
    this.els = els;
    this.hooks = hooks;
    this.es = null;
    this.paused = false;
    this.pendingCount = 0;
    this.skipped = 0;
    this.skippedBase = 0;
    this.received = 0;
    this.retry = null;
    this.params = null;
    els.pause.addEventListener("click", () => this.togglePause());
  }

  get running() {
    return this.es !== null;
  }

  start(q, type) {
    this.stop();
    this.params = { q, type };
    this.paused = false;
    this.pendingCount = 0;
    this.skipped = 0;
    this.received = 0;
    this.list.clear();
    this.connect();
    this.paint();
  }

  connect() {
    this.skippedBase = this.skipped;
    const es = new EventSource("/api/v1/tail" + qs(this.params));
    this.es = es;
    this.setStatus("connecting", "connecting…");
    es.addEventListener("open", () => {
      if (this.es === es) this.setStatus("live", "live");
    });
    es.addEventListener("events", (e) => {
      if (this.es !== es) return;
      let events;
      try { events = JSON.parse(e.data); } catch (_) { return; }
      if (!Array.isArray(events)) events = [events];
      this.received += events.length;
      if (this.paused) {
        this.pendingCount += events.length;
      } else {
        this.list.prepend(events);
        this.list.cap(MAX_ROWS);
        if (this.hooks.onEvents) this.hooks.onEvents(events);
      }
      this.paint();
    });
    es.addEventListener("skipped", (e) => {
      if (this.es !== es) return;
      try {
        const d = JSON.parse(e.data);
        // A running total per stream; a reconnect starts a new one.
        this.skipped = this.skippedBase + (Number(d.skipped) || 0);
      } catch (_) { /* ignore a malformed count */ }
      this.paint();
    });
    es.addEventListener("error", () => {
      if (this.es !== es) return;
      if (es.readyState === EventSource.CLOSED) {
        this.es = null;
        this.diagnose();
      } else {
        this.setStatus("connecting", "reconnecting…");
      }
    });
  }

  // The stream was refused: a 401 (signed out) or a 400 (bad query)?
  async diagnose() {
    const params = this.params;
    this.setStatus("error", "disconnected");
    try {
      await get("/api/v1/session");
      await get("/api/v1/search", { q: params.q, type: params.type, from: "now-1m", limit: 1 });
    } catch (e) {
      if (this.params !== params) return;
      if (e.status === 401) return;
      if (e.status === 400) {
        this.setStatus("error", "stopped: bad query");
        this.hooks.onError(e);
        return;
      }
    }
    if (this.params !== params || this.es) return;
    clearTimeout(this.retry);
    this.retry = setTimeout(() => {
      if (this.params === params && !this.es) this.connect();
    }, 3000);
  }

  stop() {
    clearTimeout(this.retry);
    this.params = null;
    if (this.es) {
      this.es.close();
      this.es = null;
    }
    this.setStatus("off", "stopped");
  }

  togglePause() {
    this.paused = !this.paused;
    if (!this.paused) this.pendingCount = 0;
    this.paint();
  }

  setStatus(kind, text) {
    const el = this.els.status;
    el.textContent = text;
    el.dataset.state = kind;
  }

  paint() {
    const { pause, pausedCount, skipped, count } = this.els;
    pause.textContent = this.paused ? "Resume" : "Pause";
    pause.setAttribute("aria-pressed", this.paused ? "true" : "false");
    pausedCount.hidden = !this.paused;
    pausedCount.textContent = `${fmtNum(this.pendingCount)} new while paused`;
    skipped.textContent = `${fmtNum(this.skipped)} skipped`;
    skipped.dataset.skipped = String(this.skipped);
    skipped.classList.toggle("warn-text", this.skipped > 0);
    count.textContent = `${fmtNum(this.list.rowCount)} shown`;
  }
}
