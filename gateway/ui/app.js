// Logway UI entry: session and sign-in, the top navigation, routing between
// views from the URL, and the keyboard.
import { api, setCsrf, setUnauthorizedHandler } from "./api.js";
import { $$, show, toast } from "./dom.js";
import { state, readUrl, writeUrl, setHistoryScope } from "./state.js";
import { initExplore, enterExplore, leaveExplore, resetExplore, setTypes, exploreKey } from "./explore.js";
import { initFilters, enterFilters } from "./filters.js";
import { initReplay, enterReplay, leaveReplay } from "./replay.js";
import { enterOverview, leaveOverview, fetchTypes } from "./overview.js";
import { enterConfig } from "./config.js";

const el = (id) => document.getElementById(id);
const EXPLORE_VIEWS = ["explore", "live", "trace"];

let session = null;
let current = null; // the section shown: explore | filters | replay | overview | config
let types = [];

function sectionOf(view) {
  return EXPLORE_VIEWS.includes(view) ? "explore" : view;
}

function leave(section) {
  if (section === "explore") leaveExplore();
  if (section === "replay") leaveReplay();
  if (section === "overview") leaveOverview();
}

// Show the view the state names; fromUrl: the URL changed under us.
function route(fromUrl) {
  if (!session) return;
  const section = sectionOf(state.view);
  if (current && current !== section) leave(current);
  for (const v of $$(".view")) show(v, v.id === "view-" + section);
  for (const b of $$("#nav button[data-view]")) {
    const on = b.dataset.view === section;
    b.classList.toggle("active", on);
    if (on) b.setAttribute("aria-current", "page");
    else b.removeAttribute("aria-current");
  }
  const entering = current !== section;
  current = section;
  document.title = "Logway · " + (section === "explore" ? (state.q || "explore") : section);
  if (section === "explore") enterExplore(fromUrl || entering);
  else if (section === "filters") enterFilters();
  else if (section === "replay") enterReplay(types);
  else if (section === "overview") enterOverview();
  else if (section === "config") enterConfig();
}

function signedIn(s) {
  session = s;
  setCsrf(s.csrf);
  setHistoryScope(s.tenant);
  el("tenant").textContent = s.open ? `${s.tenant} (open)` : s.tenant;
  el("tenant").title = s.expires_at ? "session until " + s.expires_at : "";
  show(el("signout"), !s.open);
  show(el("signin"), false);
  show(el("app"), true);
  show(el("nav"), true);
  document.body.classList.add("signed-in");
  route(true);
  fetchTypes().then((t) => {
    types = t;
    setTypes(t);
  });
}

let signingOut = false;

// Back to the sign-in form; nothing of the session's data stays on screen.
function toSignIn(message) {
  if (current) leave(current);
  current = null;
  session = null;
  setCsrf(null);
  types = [];
  setTypes([]);
  resetExplore();
  document.body.classList.remove("signed-in");
  show(el("app"), false);
  show(el("nav"), false);
  show(el("signout"), false);
  el("tenant").textContent = "";
  show(el("signin"), true);
  const err = el("signin-error");
  err.textContent = message || "";
  err.hidden = !message;
  el("signin-key").value = "";
  el("signin-key").focus();
}

async function signIn(e) {
  e.preventDefault();
  const input = el("signin-key");
  const key = input.value;
  input.value = "";
  const err = el("signin-error");
  err.hidden = true;
  if (!key) {
    err.textContent = "enter an admin key";
    err.hidden = false;
    return;
  }
  el("signin-submit").disabled = true;
  try {
    const s = await api("POST", "/api/v1/session", { json: { key }, auth401: false });
    signedIn(s);
  } catch (ex) {
    err.textContent = ex.status === 401 ? "Unknown key." : ex.message;
    err.hidden = false;
    input.focus();
  } finally {
    el("signin-submit").disabled = false;
  }
}

async function signOut() {
  if (signingOut) return;
  signingOut = true;
  try {
    await api("DELETE", "/api/v1/session", { auth401: false });
  } catch (e) {
    if (e.status !== 401) toast("sign-out: " + e.message, "error");
  } finally {
    signingOut = false;
  }
  toSignIn("Signed out.");
}

async function boot() {
  setUnauthorizedHandler(() => {
    if (session) toSignIn("Your session has ended: sign in again.");
  });
  initExplore();
  initFilters();
  initReplay();
  el("signin-form").addEventListener("submit", signIn);
  el("signout").addEventListener("click", signOut);
  for (const b of $$("#nav button[data-view]")) {
    b.addEventListener("click", () => {
      const v = b.dataset.view;
      if (sectionOf(state.view) === v && v !== "explore") return;
      if (v === "explore" && EXPLORE_VIEWS.includes(state.view)) {
        if (state.view === "explore") return;
      }
      state.view = v;
      writeUrl(true);
      route(false);
    });
  }
  window.addEventListener("popstate", () => {
    readUrl();
    route(true);
  });
  document.addEventListener("keydown", (e) => {
    if (!session || current !== "explore") return;
    if (exploreKey(e)) e.preventDefault();
  });

  readUrl();
  let s;
  try {
    s = await api("GET", "/api/v1/session", { auth401: false });
  } catch (e) {
    toSignIn(e.status === 401 ? "" : "Cannot reach the gateway: " + e.message);
    return;
  }
  signedIn(s);
}

boot();
