// DOM helpers. Every piece of event data goes through textContent,
// createTextNode or setAttribute on a harmless attribute: this module has no
// innerHTML anywhere, and the rest of the UI builds its elements with h().

const SVG_NS = "http://www.w3.org/2000/svg";

// Attributes h() refuses: anything that can run script or load a URL.
const UNSAFE_ATTR = /^(on|href$|src$|srcdoc$|action$|formaction$|style$|xlink:href$)/i;

function build(el, attrs, children) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.setAttribute("class", v);
    else if (k === "text") el.textContent = String(v);
    else if (k === "on") {
      for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    } else if (k === "dataset") {
      for (const [dk, dv] of Object.entries(v)) el.dataset[dk] = String(dv);
    } else if (k === "props") {
      Object.assign(el, v);
    } else {
      if (UNSAFE_ATTR.test(k)) throw new Error("refused attribute " + k);
      el.setAttribute(k, v === true ? "" : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  if (children === undefined || children === null || children === false) return;
  if (!Array.isArray(children)) children = [children];
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

// h("div", {class: "x", on: {click: fn}}, ["text", child]).
export function h(tag, attrs, children) {
  return build(document.createElement(tag), attrs, children);
}

export function s(tag, attrs, children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

export function $(sel, root) {
  return (root || document).querySelector(sel);
}

export function $$(sel, root) {
  return Array.from((root || document).querySelectorAll(sel));
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function show(el, on) {
  el.hidden = !on;
}

const pad = (n, w = 2) => String(n).padStart(w, "0");

// Local time with milliseconds: 2026-11-21 10:00:00.123.
export function fmtTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (isNaN(d)) return String(iso);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

export function fmtShortTime(ms, spanMs) {
  const d = new Date(ms);
  const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  if (spanMs < 5 * 60 * 1000) return `${hm}:${pad(d.getSeconds())}`;
  if (spanMs <= 36 * 3600 * 1000) return hm;
  return `${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${hm}`;
}

export function fmtNum(n) {
  if (n === null || n === undefined || n === "") return "–";
  if (typeof n !== "number") return String(n);
  if (n === 0) n = 0; // no "-0"
  return n.toLocaleString("en-US", { maximumFractionDigits: 2 });
}

export function fmtBytes(n) {
  if (n === null || n === undefined) return "–";
  if (typeof n !== "number") return String(n);
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n : n.toFixed(1)) + " " + units[i];
}

export function fmtDelta(ms) {
  if (ms === null || ms === undefined || isNaN(ms)) return "";
  const sign = ms < 0 ? "−" : "+";
  const a = Math.abs(ms);
  if (a < 1000) return `${sign}${Math.round(a)} ms`;
  if (a < 60000) return `${sign}${(a / 1000).toFixed(a < 10000 ? 2 : 1)} s`;
  if (a < 3600000) return `${sign}${(a / 60000).toFixed(1)} min`;
  return `${sign}${(a / 3600000).toFixed(1)} h`;
}

// Level → one of the fixed colour groups.
export function levelGroup(level) {
  const l = String(level || "").toLowerCase();
  if (!l) return "none";
  if (["error", "err", "fatal", "critical", "crit", "alert", "emerg", "emergency", "panic", "severe"].includes(l)) return "error";
  if (["warn", "warning"].includes(l)) return "warn";
  if (["info", "information", "informational", "notice"].includes(l)) return "info";
  if (["debug", "trace", "verbose", "fine", "finer", "finest"].includes(l)) return "debug";
  return "other";
}

let toastTimer = null;
export function toast(msg, kind) {
  const el = document.getElementById("toast");
  if (!el) return;
  el.textContent = msg;
  el.className = kind === "error" ? "toast error" : "toast";
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, 2500);
}

// Clipboard, with a fallback for browsers that refuse the async API.
export async function copyText(text, what) {
  let ok = false;
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      ok = true;
    }
  } catch (_) { ok = false; }
  if (!ok) {
    const ta = h("textarea", { class: "offscreen", "aria-hidden": "true" });
    ta.value = text;
    document.body.appendChild(ta);
    ta.select();
    try { ok = document.execCommand("copy"); } catch (_) { ok = false; }
    ta.remove();
  }
  toast(ok ? `Copied ${what || "to clipboard"}` : "Copy failed: select and copy by hand", ok ? "" : "error");
  return ok;
}

// A button that needs a second click within 4 s (no native confirm dialog).
export function confirmButton(label, confirmLabel, action, attrs) {
  let armed = null;
  const btn = h("button", Object.assign({ type: "button", class: "danger" }, attrs || {}), label);
  btn.addEventListener("click", async (e) => {
    e.stopPropagation();
    if (!armed) {
      btn.textContent = confirmLabel;
      btn.classList.add("armed");
      armed = setTimeout(() => {
        armed = null;
        btn.textContent = label;
        btn.classList.remove("armed");
      }, 4000);
      return;
    }
    clearTimeout(armed);
    armed = null;
    btn.disabled = true;
    try { await action(); } finally {
      btn.disabled = false;
      btn.textContent = label;
      btn.classList.remove("armed");
    }
  });
  return btn;
}

export function isTyping(target) {
  if (!target || !target.tagName) return false;
  const t = target.tagName;
  return t === "INPUT" || t === "TEXTAREA" || t === "SELECT" || target.isContentEditable;
}
