// Histogram of matching events over time: hand-written SVG, bars stacked by
// level group, drag across it (or click a bar) to zoom into that range.
import { s, h, clear, fmtNum, fmtShortTime, fmtTime, levelGroup } from "./dom.js";

export const GROUPS = ["error", "warn", "info", "debug", "other", "none"];
export const GROUP_LABEL = { error: "error/fatal", warn: "warn", info: "info", debug: "debug", other: "other", none: "no level" };

const M = { left: 44, right: 8, top: 8, bottom: 20 };

// {error: n, warn: n, ...} of one bucket.
function bucketGroups(b) {
  const g = {};
  if (b.by && typeof b.by === "object") {
    for (const [lvl, n] of Object.entries(b.by)) {
      const k = levelGroup(lvl);
      g[k] = (g[k] || 0) + (Number(n) || 0);
    }
    const sum = Object.values(g).reduce((a, n) => a + n, 0);
    if (sum < (b.count || 0)) g.none = (g.none || 0) + (b.count - sum);
  } else if (b.count) {
    g.all = b.count;
  }
  return g;
}

let last = null;

// data: the /api/v1/histogram answer; range: {fromMs, toMs}; onZoom(fromMs, toMs).
export function renderHistogram(container, legend, data, range, onZoom) {
  last = { container, legend, data, range, onZoom };
  draw();
}

export function redrawHistogram() {
  if (last && last.container.isConnected) draw();
}

function draw() {
  const { container, legend, data, range, onZoom } = last;
  clear(container);
  const buckets = (data && data.buckets) || [];
  const interval = (data && data.interval_ms) || 60000;
  const width = Math.max(200, container.clientWidth || 800);
  const height = Math.max(80, container.clientHeight || 120);
  const pw = width - M.left - M.right;
  const ph = height - M.top - M.bottom;

  const starts = buckets.map((b) => Date.parse(b.start)).filter((t) => !isNaN(t));
  let t0 = range.fromMs;
  let t1 = range.toMs;
  if (starts.length) {
    const first = Math.min(...starts);
    const lastEnd = Math.max(...starts) + interval;
    if (t0 === null || t0 === undefined || isNaN(t0)) t0 = first;
    if (t1 === null || t1 === undefined || isNaN(t1)) t1 = lastEnd;
    t0 = Math.min(t0, first);
    t1 = Math.max(t1, lastEnd);
  }
  if (t0 === null || t1 === null || t0 === undefined || t1 === undefined || !(t1 > t0)) {
    t1 = Date.now();
    t0 = t1 - 3600000;
  }
  const xOf = (t) => M.left + ((t - t0) / (t1 - t0)) * pw;
  const tOf = (x) => t0 + ((Math.min(Math.max(x, M.left), M.left + pw) - M.left) / pw) * (t1 - t0);

  let max = 0;
  let total = 0;
  const totals = {};
  const rows = buckets.map((b) => {
    const g = bucketGroups(b);
    const count = Number(b.count) || 0;
    total += count;
    max = Math.max(max, count);
    for (const [k, n] of Object.entries(g)) totals[k] = (totals[k] || 0) + n;
    return { b, g, count, start: Date.parse(b.start) };
  });

  const svg = s("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: "hist-svg", role: "img",
    "aria-label": `histogram, ${total} events` });
  svg.appendChild(s("line", { x1: M.left, x2: M.left + pw, y1: M.top + ph + 0.5, y2: M.top + ph + 0.5, class: "hist-axis" }));
  if (max > 0) {
    svg.appendChild(s("line", { x1: M.left, x2: M.left + pw, y1: M.top + 0.5, y2: M.top + 0.5, class: "hist-grid" }));
    svg.appendChild(s("text", { x: M.left - 4, y: M.top + 4, class: "hist-label", "text-anchor": "end" }, fmtNum(max)));
    svg.appendChild(s("line", { x1: M.left, x2: M.left + pw, y1: M.top + ph / 2 + 0.5, y2: M.top + ph / 2 + 0.5, class: "hist-grid" }));
  }
  svg.appendChild(s("text", { x: M.left - 4, y: M.top + ph, class: "hist-label", "text-anchor": "end" }, "0"));

  const bars = s("g", { class: "hist-bars" });
  for (const r of rows) {
    if (isNaN(r.start)) continue;
    const x = xOf(r.start);
    const w = Math.max(1, xOf(r.start + interval) - x - (pw / rows.length > 4 ? 1 : 0));
    const g = s("g", { class: "hist-bucket", "data-start": r.b.start, "data-count": r.count });
    const parts = Object.entries(r.g).filter(([, n]) => n > 0)
      .map(([k, n]) => `${k === "all" ? "events" : GROUP_LABEL[k]} ${fmtNum(n)}`);
    g.appendChild(s("title", {}, `${fmtTime(r.b.start)}: ${fmtNum(r.count)}` + (parts.length ? ` (${parts.join(", ")})` : "")));
    g.appendChild(s("rect", { x, y: M.top, width: w, height: ph, class: "hist-col" }));
    let y = M.top + ph;
    const order = r.g.all !== undefined ? ["all"] : GROUPS;
    for (const k of order) {
      const n = r.g[k] || 0;
      if (!n || !max) continue;
      const bh = (n / max) * ph;
      y -= bh;
      g.appendChild(s("rect", { x, y, width: w, height: Math.max(bh, 0.5), class: "bar lvl-" + k }));
    }
    bars.appendChild(g);
  }
  svg.appendChild(bars);

  const ticks = Math.max(2, Math.min(8, Math.floor(pw / 110)));
  for (let i = 0; i <= ticks; i++) {
    const t = t0 + ((t1 - t0) * i) / ticks;
    const x = xOf(t);
    svg.appendChild(s("line", { x1: x, x2: x, y1: M.top + ph, y2: M.top + ph + 4, class: "hist-axis" }));
    svg.appendChild(s("text", {
      x, y: height - 4, class: "hist-label",
      "text-anchor": i === 0 ? "start" : i === ticks ? "end" : "middle",
    }, fmtShortTime(t, t1 - t0)));
  }
  if (!total) {
    svg.appendChild(s("text", { x: M.left + pw / 2, y: M.top + ph / 2, class: "hist-empty", "text-anchor": "middle" }, "no events in this range"));
  }

  // Drag to zoom.
  const sel = s("rect", { x: 0, y: M.top, width: 0, height: ph, class: "hist-sel", visibility: "hidden" });
  const hit = s("rect", { x: M.left, y: M.top, width: pw, height: ph, class: "hist-hit" });
  svg.appendChild(sel);
  svg.appendChild(hit);
  let dragFrom = null;
  const xAt = (e) => e.clientX - svg.getBoundingClientRect().left;
  const move = (e) => {
    if (dragFrom === null) return;
    const x = Math.min(Math.max(xAt(e), M.left), M.left + pw);
    sel.setAttribute("x", Math.min(x, dragFrom));
    sel.setAttribute("width", Math.abs(x - dragFrom));
    sel.setAttribute("visibility", "visible");
  };
  const up = (e) => {
    window.removeEventListener("mousemove", move);
    window.removeEventListener("mouseup", up);
    if (dragFrom === null) return;
    const x = Math.min(Math.max(xAt(e), M.left), M.left + pw);
    const a = Math.min(x, dragFrom);
    const b = Math.max(x, dragFrom);
    dragFrom = null;
    sel.setAttribute("visibility", "hidden");
    if (b - a >= 3) {
      onZoom(Math.floor(tOf(a)), Math.ceil(tOf(b)));
    } else {
      // A click on a bar zooms into its bucket.
      const t = tOf(x);
      const r = rows.find((r) => r.count > 0 && t >= r.start && t < r.start + interval);
      if (r) onZoom(r.start, r.start + interval);
    }
  };
  hit.addEventListener("mousedown", (e) => {
    if (e.button !== 0) return;
    e.preventDefault();
    dragFrom = Math.min(Math.max(xAt(e), M.left), M.left + pw);
    move(e);
    window.addEventListener("mousemove", move);
    window.addEventListener("mouseup", up);
  });
  container.appendChild(svg);

  if (legend) {
    clear(legend);
    legend.appendChild(h("span", { id: "histogram-total", class: "hist-total", "data-total": total },
      `${fmtNum(total)} in histogram`));
    for (const k of GROUPS) {
      if (!totals[k]) continue;
      legend.appendChild(h("span", { class: "legend-item", "data-level": k }, [
        h("span", { class: "swatch lvl-" + k }), `${GROUP_LABEL[k]} ${fmtNum(totals[k])}`,
      ]));
    }
  }
  return total;
}
