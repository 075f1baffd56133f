// Query text helpers (clauses, bare terms to highlight) and reading fields
// out of a stored event.

export const PROMOTED = ["id", "tenant", "type", "received_at", "timestamp", "level", "service",
  "host", "request_id", "message", "outcome", "reason"];

// A value in a nested object by dotted path; a key that itself holds dots
// ("user.id" stored flat) is found too.
export function getPath(obj, path) {
  if (obj === null || typeof obj !== "object") return undefined;
  if (Object.prototype.hasOwnProperty.call(obj, path)) return obj[path];
  let i = path.indexOf(".");
  while (i > 0) {
    const head = path.slice(0, i);
    if (Object.prototype.hasOwnProperty.call(obj, head)) {
      const v = getPath(obj[head], path.slice(i + 1));
      if (v !== undefined) return v;
    }
    i = path.indexOf(".", i + 1);
  }
  return undefined;
}

// A query field name → the event's value (promoted fields at the top, the
// rest under `fields`, `fields.x` for a nested name that collides).
export function getField(ev, name) {
  if (!ev) return undefined;
  if (PROMOTED.includes(name)) return ev[name];
  if (name.startsWith("fields.")) return getPath(ev.fields, name.slice(7));
  return getPath(ev.fields, name);
}

export function valueText(v) {
  if (v === undefined || v === null) return "";
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

// Every field name of an event usable in a query.
export function eventFieldNames(ev, into) {
  const out = into || new Set();
  for (const k of PROMOTED) if (ev[k] !== undefined && ev[k] !== null && k !== "tenant") out.add(k);
  const walk = (o, prefix) => {
    for (const [k, v] of Object.entries(o || {})) {
      const name = prefix ? prefix + "." + k : k;
      if (v && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length) walk(v, name);
      else out.add(!prefix && PROMOTED.includes(k) ? "fields." + name : name);
    }
  };
  walk(ev.fields, "");
  return out;
}

export function quoteValue(v) {
  return '"' + String(v).replace(/\\/g, "\\\\").replace(/"/g, '\\"') + '"';
}

export function clause(field, value, negate) {
  return (negate ? "NOT " : "") + field + ":" + quoteValue(value);
}

// q AND clause, with q in parentheses when it has a top-level OR.
export function addClause(q, c) {
  const t = (q || "").trim();
  if (!t) return c;
  if (/\bOR\b/.test(t) || /^\s*NOT\b/.test(t) && /\bAND\b/.test(t)) return "(" + t + ") AND " + c;
  return t + " AND " + c;
}

// Tokens of a query: words, "phrases", field:value (value maybe quoted).
function tokens(q) {
  const out = [];
  let i = 0;
  while (i < q.length) {
    const ch = q[i];
    if (/\s/.test(ch) || ch === "(" || ch === ")") { i++; continue; }
    let tok = "";
    let quoted = false;
    while (i < q.length && !/\s/.test(q[i]) && q[i] !== "(" && q[i] !== ")") {
      if (q[i] === '"') {
        quoted = true;
        let j = i + 1;
        let phrase = "";
        while (j < q.length && q[j] !== '"') {
          if (q[j] === "\\" && j + 1 < q.length) j++;
          phrase += q[j];
          j++;
        }
        tok += '"' + phrase + '"';
        i = j + 1;
      } else if (q[i] === "[" || q[i] === "{") {
        const close = q[i] === "[" ? "]" : "}";
        const j = q.indexOf(close, i);
        tok += j < 0 ? q.slice(i) : q.slice(i, j + 1);
        i = j < 0 ? q.length : j + 1;
      } else {
        if (q[i] === "\\" && i + 1 < q.length) i++;
        tok += q[i];
        i++;
      }
    }
    out.push({ tok, quoted });
  }
  return out;
}

// Words and phrases of the query that search the message (no field, not
// negated): what the result list highlights.
export function bareTerms(q) {
  const terms = [];
  let negate = false;
  for (const { tok } of tokens(q || "")) {
    if (tok === "AND" || tok === "OR" || tok === "&&" || tok === "||") { negate = false; continue; }
    if (tok === "NOT" || tok === "!") { negate = true; continue; }
    let t = tok;
    let neg = negate;
    negate = false;
    if (t.startsWith("-") || t.startsWith("!")) { neg = true; t = t.slice(1); }
    if (t.startsWith("+")) t = t.slice(1);
    if (neg || !t) continue;
    const colon = t.indexOf(":");
    if (colon >= 0 && !(t.startsWith('"') && colon > 0 && colon < t.indexOf('"', 1))) continue;
    t = t.replace(/^"|"$/g, "").replace(/[*?~^]\d*$/g, "").replace(/[*?]/g, "");
    if (t.length) terms.push(t);
  }
  return terms;
}

function escapeRe(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

// text → fragment of text nodes and <mark> elements (never parsed as HTML).
export function highlight(text, terms) {
  const frag = document.createDocumentFragment();
  const str = String(text);
  if (!terms || !terms.length) {
    frag.appendChild(document.createTextNode(str));
    return frag;
  }
  const sorted = [...new Set(terms)].sort((a, b) => b.length - a.length).map(escapeRe);
  const re = new RegExp(sorted.join("|"), "gi");
  let last = 0;
  let m;
  while ((m = re.exec(str)) !== null) {
    if (m[0].length === 0) { re.lastIndex++; continue; }
    if (m.index > last) frag.appendChild(document.createTextNode(str.slice(last, m.index)));
    const mark = document.createElement("mark");
    mark.textContent = m[0];
    frag.appendChild(mark);
    last = m.index + m[0].length;
  }
  if (last < str.length) frag.appendChild(document.createTextNode(str.slice(last)));
  return frag;
}

// Shell-quote for a POSIX shell: 'it'\''s'.
export function shq(s) {
  return "'" + String(s).replace(/'/g, "'\\''") + "'";
}
