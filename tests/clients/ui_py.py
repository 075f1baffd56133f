"""Browser tests of the Logway UI with Playwright for Python (sync API).

usage: ui_py.py BASE_URL --wasm PATH_TO_FILTER.wasm --shots DIR

Needs a running gateway at BASE_URL whose config has tenant `acme` (admin
key `acme-admin`, ingest key `acme-ingest`) and tenant `globex` (admin key
`globex-admin`, ingest key `globex-ingest`), both with the generic route
`POST /v1/logs/{type}`. Chromium is the system one (/usr/bin/chromium, or
$CHROMIUM); `playwright install` is never run.

The script seeds its own events over HTTP (a marker word unique to the
run), waits until they are searchable, then runs each scenario against
the DOM, printing `OK <name>`; the first failure prints `FAIL <name>: …`,
saves a screenshot and exits 1. One screenshot per main view goes into
--shots. Ends with `N passed, 0 failed`.
"""
import argparse
import json
import os
import re
import secrets
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timedelta, timezone

from playwright.sync_api import sync_playwright

ACME_ADMIN, ACME_INGEST = "acme-admin", "acme-ingest"
GLOBEX_ADMIN, GLOBEX_INGEST = "globex-admin", "globex-ingest"
XSS_MESSAGE = "<img src=x onerror=alert(1)>"
XSS_LINK = "javascript:alert(1)"


class Failure(Exception):
    pass


def check(cond, message):
    if not cond:
        raise Failure(message)


# ---------------------------------------------------------------- HTTP side

def http(method, url, body=None, key=None, content_type=None, timeout=15):
    headers = {}
    if key:
        headers["Authorization"] = "Bearer " + key
    if content_type:
        headers["Content-Type"] = content_type
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as res:
            return res.status, res.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def ingest(base, key, log_type, events):
    body = "\n".join(json.dumps(e) for e in events) + "\n"
    status, text = http("POST", f"{base}/v1/logs/{log_type}", body, key, "application/x-ndjson")
    if status != 200:
        raise Failure(f"ingest {log_type}: HTTP {status} {text[:300]!r}")
    answer = json.loads(text)
    if answer.get("accepted") != len(events):
        raise Failure(f"ingest {log_type}: {answer}")


def api_search(base, key, q, **params):
    params = dict({"q": q, "from": "now-1h", "limit": 100}, **params)
    status, text = http("GET", f"{base}/api/v1/search?{urllib.parse.urlencode(params)}", key=key)
    if status != 200:
        raise Failure(f"search {q!r}: HTTP {status} {text[:300]!r}")
    return json.loads(text)


def iso(t):
    return t.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Seed:
    """The run's events: two types sharing one request id, levels, XSS."""

    def __init__(self, base):
        self.base = base
        self.marker = "uimark" + secrets.token_hex(5)
        self.secret = "gxsecret" + secrets.token_hex(5)
        self.rid = "req-" + self.marker
        t0 = datetime.now(timezone.utc) - timedelta(minutes=3)
        m = self.marker
        self.web = [
            {"timestamp": iso(t0), "level": "info", "service": "frontend", "request_id": self.rid,
             "message": f"{m} GET /checkout started", "user": {"id": 42}, "status": 200, "marker": m},
            {"timestamp": iso(t0 + timedelta(seconds=20)), "level": "warn", "service": "frontend",
             "message": f"{m} slow render of cart", "user": {"id": 7}, "marker": m},
            {"timestamp": iso(t0 + timedelta(seconds=25)), "level": "error", "service": "frontend",
             "message": XSS_MESSAGE, "link": XSS_LINK, "marker": m},
        ]
        self.api = [
            {"timestamp": iso(t0 + timedelta(milliseconds=12)), "level": "info", "service": "payments",
             "request_id": self.rid, "message": f"{m} charge card", "amount": 1250, "marker": m},
            {"timestamp": iso(t0 + timedelta(milliseconds=45)), "level": "error", "service": "payments",
             "request_id": self.rid, "message": f"{m} card declined", "marker": m},
            {"timestamp": iso(t0 + timedelta(seconds=30)), "level": "debug", "service": "payments",
             "message": f"{m} retry scheduled", "marker": m},
        ]
        self.total = len(self.web) + len(self.api)
        # Every acme event of the run (the XSS one has the marker only in a field).
        self.q = f"marker:{m}"
        # Events with the marker as a word of their message.
        self.words_total = self.total - 1

    def send(self):
        ingest(self.base, ACME_INGEST, "web_logs", self.web)
        ingest(self.base, ACME_INGEST, "api_logs", self.api)
        ingest(self.base, GLOBEX_INGEST, "web_logs", [
            {"level": "info", "service": "vault", "message": f"{self.secret} globex only", "request_id": self.rid}])
        deadline = time.time() + 30
        while True:
            a = api_search(self.base, ACME_ADMIN, self.q)["total"]
            g = api_search(self.base, GLOBEX_ADMIN, self.secret)["total"]
            if a == self.total and g == 1:
                return
            if time.time() > deadline:
                raise Failure(f"seeded events not searchable after 30 s: acme {a}/{self.total}, globex {g}/1")
            time.sleep(0.3)


# ---------------------------------------------------------------- browser side

class UI:
    def __init__(self, page, base, shots):
        self.page = page
        self.base = base
        self.shots = shots
        self.dialogs = []
        page.on("dialog", self._dialog)

    def _dialog(self, d):
        self.dialogs.append(f"{d.type}: {d.message}")
        d.dismiss()

    def shot(self, name):
        self.page.screenshot(path=os.path.join(self.shots, name + ".png"), full_page=False)

    def sign_in(self, key):
        p = self.page
        p.wait_for_selector("#signin-key", state="visible")
        p.fill("#signin-key", key)
        p.click("#signin-submit")
        p.wait_for_selector("#signin", state="hidden")
        p.wait_for_selector("#view-explore", state="visible")

    def sign_out(self):
        self.page.click("#signout")
        self.page.wait_for_selector("#signin-key", state="visible")

    def total(self):
        return int(self.page.get_attribute("#hits-total", "data-total") or "-1")

    def query(self, q, expect_total=None):
        p = self.page
        p.click("#nav-explore")
        p.fill("#query", q)
        p.click("#run")
        return self.wait_results(expect_total)

    def wait_results(self, expect_total=None):
        p = self.page
        if expect_total is None:
            p.wait_for_function("() => /^\\d+$/.test(document.querySelector('#hits-total').dataset.total || '')")
        else:
            p.wait_for_function("n => document.querySelector('#hits-total').dataset.total === String(n)",
                                arg=expect_total)
        return self.total()

    def row_texts(self, sel):
        return self.page.eval_on_selector_all(sel, "els => els.map(e => e.textContent)")


# ---------------------------------------------------------------- scenarios

def sc_csp(ui, seed):
    res = ui.page.goto(ui.base + "/")
    check(res is not None and res.status == 200, f"GET / answered {res and res.status}")
    csp = res.headers.get("content-security-policy", "")
    for part in ("default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"):
        check(part in csp, f"CSP header lacks {part!r}: {csp!r}")


def sc_sign_in(ui, seed):
    p = ui.page
    p.wait_for_selector("#signin-key", state="visible")
    ui.shot("signin")
    p.fill("#signin-key", "not-a-key-at-all")
    p.click("#signin-submit")
    p.wait_for_selector("#signin-error", state="visible")
    p.fill("#signin-key", ACME_INGEST)
    p.click("#signin-submit")
    p.wait_for_function("() => /ingest|admin|forbidden|403/i.test(document.querySelector('#signin-error').textContent)")
    ui.sign_in(ACME_ADMIN)
    check("acme" in p.text_content("#tenant"), f"tenant shown: {p.text_content('#tenant')!r}")
    check(p.is_visible("#signout"), "no sign-out button")
    stored = p.evaluate("() => JSON.stringify(localStorage) + JSON.stringify(sessionStorage) + document.cookie")
    check("acme-admin" not in stored, "the admin key was stored by the page")


def sc_query(ui, seed):
    p = ui.page
    n = ui.query(seed.marker, seed.words_total)
    rows = p.locator("#results-body tr.hit-row")
    check(rows.count() == n, f"{rows.count()} rows, expected {n}")
    p.wait_for_selector("#histogram svg rect.bar")
    hist = int(p.get_attribute("#histogram-total", "data-total"))
    check(hist == n, f"histogram total {hist} != hits total {n}")
    marks = ui.row_texts("#results-body mark")
    check(any(m.lower() == seed.marker for m in marks), f"marker not highlighted: {marks[:5]}")
    times = p.eval_on_selector_all("#results-body tr.hit-row td.c-time", "els => els.map(e => e.title)")
    # Compared as instants: the titles are ISO times whose fraction has as
    # many digits as it needs ("31.5Z" is after "31.488Z", not after "31.533Z").
    instants = [datetime.fromisoformat(t.replace("Z", "+00:00")) for t in times]
    check(instants == sorted(instants, reverse=True), f"results not newest first: {times}")
    check(f"q={seed.marker}" in p.url, f"the URL does not hold the query: {p.url}")
    n = ui.query(seed.q, seed.total)
    check(rows.count() == n, f"{rows.count()} rows, expected {n}")
    p.click("#history-btn")
    hist_items = ui.row_texts("#history-menu .history-item")
    check(seed.marker in hist_items and seed.q in hist_items, f"query history lacks the queries: {hist_items}")
    p.keyboard.press("Escape")
    ui.shot("explore")


def sc_query_error(ui, seed):
    p = ui.page
    p.fill("#query", "level:error AND (")
    p.click("#run")
    p.wait_for_selector("#query-error", state="visible")
    check(p.text_content("#query-error-msg").strip(), "empty query error")
    if p.is_visible("#query-error-pointer"):
        check("^" in p.text_content("#query-error-caret"), "no caret under the query")


def sc_zoom(ui, seed):
    p = ui.page
    before_total = ui.query(seed.q, seed.total)
    before = (p.input_value("#time-from"), p.input_value("#time-to"))
    box = p.locator("#histogram svg .hist-hit").bounding_box()
    check(box is not None, "no histogram drag area")
    y = box["y"] + box["height"] / 2
    p.mouse.move(box["x"] + box["width"] * 0.80, y)
    p.mouse.down()
    p.mouse.move(box["x"] + box["width"] * 0.90, y, steps=4)
    p.mouse.move(box["x"] + box["width"] - 1, y, steps=4)
    p.mouse.up()
    p.wait_for_function("b => document.querySelector('#time-from').value !== b", arg=before[0])
    after = (p.input_value("#time-from"), p.input_value("#time-to"))
    check(after != before and not after[0].startswith("now"), f"from/to did not change: {before} → {after}")
    n = ui.wait_results()
    check(0 <= n <= before_total, f"zoom gave {n} hits, more than {before_total}")
    check("from=" in p.url, f"the URL does not hold from: {p.url}")
    p.click("#range-1h")
    ui.wait_results(seed.total)


def sc_expand(ui, seed):
    p = ui.page
    ui.query(seed.q, seed.total)
    p.locator("#results-body tr.hit-row").first.click()
    p.wait_for_selector(".hit-detail .json-tree", state="visible")
    keys = ui.row_texts(".hit-detail .jt-key")
    check(any(k.startswith("message") for k in keys), f"JSON tree lacks message: {keys}")
    check(p.locator(".hit-detail button.copy-json").count() == 1, "no copy JSON button")
    check(p.locator(".hit-detail .jt-copy").count() > 3, "no per-value copy buttons")
    ui.shot("detail")
    p.keyboard.press("Escape")
    p.wait_for_selector(".hit-detail", state="detached")


def sc_keyboard(ui, seed):
    p = ui.page
    ui.query("level:debug", None)
    p.fill("#query", seed.q)
    p.press("#query", "Enter")
    ui.wait_results(seed.total)
    p.click("#hits-total")
    p.keyboard.press("/")
    check(p.evaluate("() => document.activeElement.id") == "query", "/ does not focus the query")
    p.keyboard.press("Escape")
    p.keyboard.press("j")
    p.keyboard.press("j")
    sel = p.locator("#results-body tr.hit-row.selected")
    check(sel.count() == 1, "j selects no row")
    idx = p.evaluate("() => [...document.querySelectorAll('#results-body tr.hit-row')].findIndex(r => r.classList.contains('selected'))")
    check(idx == 1, f"j j selected row {idx}, expected 1")
    p.keyboard.press("k")
    idx = p.evaluate("() => [...document.querySelectorAll('#results-body tr.hit-row')].findIndex(r => r.classList.contains('selected'))")
    check(idx == 0, f"k selected row {idx}, expected 0")
    p.keyboard.press("o")
    p.wait_for_selector(".hit-detail", state="visible")
    p.keyboard.press("Escape")
    p.wait_for_selector(".hit-detail", state="detached")


def sc_field_filter(ui, seed):
    p = ui.page
    ui.query(seed.q, seed.total)
    p.click('#field-list li[data-field="service"] .field-name')
    value = p.locator('#field-list li[data-field="service"] li.field-value-row[data-value="payments"] .field-value')
    value.wait_for(state="visible")
    value.click()
    n = ui.wait_results(len(seed.api))
    q = p.input_value("#query")
    check('service:"payments"' in q, f'query lacks service:"payments": {q!r}')
    services = ui.row_texts("#results-body tr.hit-row td.c-service")
    check(len(services) == n and set(services) == {"payments"}, f"rows not all payments: {services}")
    # "−" excludes a value; "add as column" adds one.
    p.click('#field-list li[data-field="level"] .field-name')
    p.locator('#field-list li[data-field="level"] li.field-value-row[data-value="error"] .value-exclude').click()
    ui.wait_results(len(seed.api) - 1)
    check('NOT level:"error"' in p.input_value("#query"), "− did not add NOT level:\"error\"")
    p.locator('#field-list li[data-field="amount"] .field-addcol').click()
    p.wait_for_selector('#results thead th[data-field="amount"]')
    cells = ui.row_texts('#results-body td.c-col[data-field="amount"]')
    check("1250" in cells, f"amount column: {cells}")
    check("cols=amount" in p.url, f"URL lacks cols: {p.url}")
    p.click('#results thead th[data-field="amount"] .col-remove')


def sc_trace(ui, seed):
    p = ui.page
    ui.query(seed.q, seed.total)
    row = p.locator("#results-body tr.hit-row", has_text="card declined")
    row.click()
    p.locator(".hit-detail .trace-btn").click()
    p.wait_for_selector("#trace-view", state="visible")
    p.wait_for_function("() => document.querySelectorAll('#trace-body tr.trace-row').length === 3")
    types = ui.row_texts("#trace-body tr.trace-row td.trace-type")
    check(types == ["web_logs", "api_logs", "api_logs"], f"trace types/order: {types}")
    msgs = ui.row_texts("#trace-body tr.trace-row td.trace-message")
    check(msgs[0].endswith("GET /checkout started") and msgs[2].endswith("card declined"), f"trace order: {msgs}")
    deltas = ui.row_texts("#trace-body tr.trace-row td.trace-delta")
    check(deltas[1:] == ["+12 ms", "+33 ms"], f"trace deltas: {deltas}")
    check(seed.secret not in p.text_content("#trace-view"), "globex event in acme's trace")
    check("view=trace" in p.url, f"URL does not hold the trace: {p.url}")
    ui.shot("trace")
    p.keyboard.press("Escape")
    p.wait_for_selector("#trace-view", state="hidden")


def sc_copy_as(ui, seed):
    p = ui.page
    ui.query(seed.q, seed.total)
    p.click("#copy-curl")
    cmd = p.input_value("#share-output")
    check('-H "Authorization: Bearer $LOGWAY_KEY"' in cmd, f"curl command: {cmd}")
    url = re.search(r"'(http[^']+)'", cmd)
    check(url is not None, f"no URL in {cmd}")
    status, text = http("GET", url.group(1), key=ACME_ADMIN)
    check(status == 200 and json.loads(text)["total"] == seed.total, f"the curl URL answers {status} {text[:200]!r}")
    p.click("#copy-cli")
    cli = p.input_value("#share-output")
    check(cli.startswith(f"logway search '{seed.q}' --from now-1h"), f"logway search command: {cli}")


def sc_saved(ui, seed):
    p = ui.page
    ui.query(seed.q, seed.total)
    p.click("#saved-btn")
    name = "saved " + seed.marker
    p.fill("#saved-name", name)
    p.fill("#saved-note", "from the UI test")
    p.click("#saved-save")
    item = p.locator("#saved-list li.saved-item", has_text=name)
    item.wait_for()
    p.fill("#query", "")
    item.locator(".saved-open").click()
    ui.wait_results(seed.total)
    check(p.input_value("#query") == seed.q, "opening the saved search did not restore the query")
    p.click("#saved-btn")
    item = p.locator("#saved-list li.saved-item", has_text=name)
    item.locator(".saved-delete").click()
    item.locator(".saved-delete").click()
    p.locator("#saved-list li.saved-item", has_text=name).wait_for(state="detached")
    p.click("#saved-close")


def sc_load_more(ui, seed):
    p = ui.page
    batch = "batch" + secrets.token_hex(4)
    t0 = datetime.now(timezone.utc) - timedelta(minutes=10)
    ingest(ui.base, ACME_INGEST, "api_logs", [
        {"timestamp": iso(t0 + timedelta(seconds=i)), "level": "info", "message": f"page event {i}", "batch": batch}
        for i in range(130)])
    deadline = time.time() + 30
    while api_search(ui.base, ACME_ADMIN, f"batch:{batch}")["total"] != 130:
        check(time.time() < deadline, "the 130 events of the page test are not searchable")
        time.sleep(0.3)
    ui.query(f"batch:{batch}", 130)
    rows = p.locator("#results-body tr.hit-row")
    check(rows.count() == 100, f"first page has {rows.count()} rows")
    p.click("#load-more")
    p.wait_for_function("() => document.querySelectorAll('#results-body tr.hit-row').length === 130")
    p.wait_for_selector("#load-more", state="hidden")
    msgs = ui.row_texts("#results-body tr.hit-row td.c-message")
    check(msgs[0] == "page event 129" and msgs[-1] == "page event 0" and len(set(msgs)) == 130,
          f"pages overlap or are out of order: {msgs[:2]} … {msgs[-2:]}")


def sc_live_tail(ui, seed):
    p = ui.page
    ui.query(seed.q, seed.total)
    p.click("#tail-toggle")
    p.wait_for_selector("#tail-bar", state="visible")
    p.wait_for_function("() => document.querySelector('#tail-status').dataset.state === 'live'")
    check(re.fullmatch(r"\d+ skipped", p.text_content("#tail-skipped").strip()), "no skipped count shown")
    check("view=live" in p.url, f"URL does not hold live mode: {p.url}")
    word = "live" + secrets.token_hex(4)
    ingest(ui.base, ACME_INGEST, "web_logs", [{"level": "info", "service": "frontend", "message": f"{seed.marker} {word}", "marker": seed.marker}])
    t = time.time()
    try:
        p.locator("#results-body tr.hit-row", has_text=word).wait_for(timeout=1000)
    except Exception:
        raise Failure(f"the event posted to the tail was not shown within 1 s (waited {time.time() - t:.2f} s)")
    # Paused: counted, not shown; resuming clears the count.
    p.click("#tail-pause")
    word2 = "paused" + secrets.token_hex(4)
    ingest(ui.base, ACME_INGEST, "web_logs", [{"level": "info", "message": f"{seed.marker} {word2}", "marker": seed.marker}])
    seed.total += 2  # both carry the marker field: later scenarios see them
    p.wait_for_function("() => /^1 new/.test(document.querySelector('#tail-paused-count').textContent)", timeout=5000)
    check(p.locator("#results-body tr.hit-row", has_text=word2).count() == 0, "an event was rendered while paused")
    ui.shot("live")
    p.click("#tail-pause")
    p.wait_for_selector("#tail-paused-count", state="hidden")
    # An event posted for another query does not show.
    p.click("#tail-toggle")
    p.wait_for_selector("#tail-bar", state="hidden")


def sc_filters(ui, seed, wasm):
    p = ui.page
    p.click("#nav-filters")
    p.wait_for_selector("#view-filters", state="visible")
    name = "ui-" + seed.marker[-10:]
    p.fill("#filter-name", name)
    p.set_input_files("#filter-file", wasm)
    p.click("#filter-upload")
    row = p.locator(f'#filters-body tr.filter-row[data-name="{name}"]')
    row.wait_for(timeout=30000)
    check(row.locator("td.filter-name").text_content() == name, "uploaded filter not listed")
    row.locator(".filter-test-btn").click()
    p.fill("#filter-test-input", json.dumps({"message": "hello from the ui test", "level": "info"}))
    p.click("#filter-test-run")
    p.wait_for_selector("#filter-test-results .test-result", timeout=30000)
    verdict = p.get_attribute("#filter-test-results .test-result", "data-verdict")
    check(verdict in ("keep", "drop", "edit", "replace", "split", "error"), f"test verdict {verdict!r}")
    ui.shot("filters")
    p.click("#filter-test-close")
    row.locator(".filter-delete").click()
    row.locator(".filter-delete").click()
    row.wait_for(state="detached")
    status, text = http("GET", f"{ui.base}/api/v1/filters", key=ACME_ADMIN)
    check(name not in text.decode(), "the filter is still listed by the API after delete")


def sc_replay(ui, seed, bulk_type, bulk_objects):
    p = ui.page
    p.click("#nav-replay")
    p.wait_for_selector("#view-replay", state="visible")

    def start(log_type, query):
        p.fill("#replay-type", log_type)
        p.fill("#replay-from", "now-2h")
        p.fill("#replay-to", "now")
        p.fill("#replay-query", query)
        before = p.evaluate("() => (/started job (\\S+)/.exec(document.querySelector('#replay-status').textContent) || [])[1] || ''")
        p.click("#replay-start")
        p.wait_for_function(
            "(before) => { const m = /started job (\\S+)/.exec(document.querySelector('#replay-status').textContent);"
            " return m && m[1] !== before; }",
            arg=before,
        )
        return p.text_content("#replay-status").split("started job ")[1].strip()

    # A job over the archived bulk objects: cancelled from the page while it
    # runs, with its progress bar moving.
    job_id = start(bulk_type, "")
    job = p.locator(f'#replay-active .replay-job[data-id="{job_id}"]')
    job.wait_for()
    p.wait_for_function(
        """(id) => { const j = document.querySelector(`#replay-active .replay-job[data-id="${id}"]`);
                     return j && j.dataset.state === "running"
                       && Number(j.querySelector('[role=progressbar]').getAttribute('aria-valuenow')) > 0; }""",
        arg=job_id, timeout=30000)
    ui.shot("replay-running")
    job.locator(".replay-cancel").click()
    done = p.locator(f'#replay-history .replay-job[data-id="{job_id}"]')
    done.wait_for(timeout=30000)
    check(done.get_attribute("data-state") == "cancelled",
          f"the cancelled replay ended {done.get_attribute('data-state')}")
    facts = done.locator(".job-facts").text_content()
    m = re.match(r"\s*([\d,]+)/([\d,]+) objects", facts)
    check(m is not None, f"no object progress in {facts!r}")
    objects_done, total = (int(x.replace(",", "")) for x in m.groups())
    check(total == bulk_objects and 0 < objects_done < total,
          f"cancelled after {objects_done} of {total} objects (expected some of {bulk_objects})")
    _, body = http("GET", f"{ui.base}/api/v1/replay/{job_id}", key=ACME_ADMIN)
    check(json.loads(body).get("state") == "cancelled", f"the API says {body[:200]!r}")

    # A job over the seeded events runs to the end.
    job_id = start("web_logs", seed.marker)
    done = p.locator(f'#replay-history .replay-job[data-id="{job_id}"]')
    done.wait_for(timeout=30000)
    check(done.get_attribute("data-state") == "done", f"replay job ended {done.get_attribute('data-state')}")
    ui.shot("replay")


def sc_admin_views(ui, seed):
    p = ui.page
    p.click("#nav-overview")
    p.wait_for_selector('#overview-types-body tr.overview-type[data-type="web_logs"]')
    check(p.locator("#overview-cards .card").count() >= 1, "no WAL/index/archive cards")
    ui.shot("overview")
    p.click("#nav-config")
    p.wait_for_selector("#config-tenant")
    check(p.text_content("#config-tenant") == "acme", "config shows another tenant")
    check("acme-admin" not in p.text_content("#config-body"), "config shows a key")
    ui.shot("config")
    # The URL restores the view.
    p.goto(ui.base + "/?view=overview")
    p.wait_for_selector("#view-overview", state="visible")
    p.click("#nav-explore")


def sc_xss(ui, seed):
    p = ui.page
    p.goto(ui.base + "/?" + urllib.parse.urlencode({"q": seed.q, "cols": "link"}))
    ui.wait_results(seed.total)
    check(p.input_value("#query") == seed.q, "the URL did not restore the query")
    msgs = ui.row_texts("#results-body tr.hit-row td.c-message")
    check(XSS_MESSAGE in msgs, f"the XSS message is not shown as text: {msgs}")
    check(p.locator('img[src="x"]').count() == 0, "an <img src=x> element exists")
    check(p.locator("#results img").count() == 0, "an image in the results")
    links = ui.row_texts('#results-body td.c-col[data-field="link"]')
    check(XSS_LINK in links, f"link column: {links}")
    p.locator("#results-body tr.hit-row", has_text=XSS_MESSAGE).click()
    p.wait_for_selector(".hit-detail .json-tree")
    tree = p.text_content(".hit-detail .json-tree")
    check(XSS_LINK in tree and XSS_MESSAGE in tree, "the JSON tree does not show the values as text")
    check(p.locator("a[href]").count() == 0, "the page has a link")
    check(p.locator("[href^='javascript'], [src^='javascript']").count() == 0, "a javascript: URL in an attribute")
    p.wait_for_timeout(500)
    check(not ui.dialogs, f"dialogs fired: {ui.dialogs}")


def sc_sign_out(ui, seed):
    p = ui.page
    ui.sign_out()
    check(not p.is_visible("#app"), "the app is still shown after sign-out")
    check(p.locator("#results-body tr.hit-row").count() == 0, "results stay in the page after sign-out")
    for path in ("/api/v1/search?q=x", "/api/v1/session", "/api/v1/filters"):
        status = p.evaluate("u => fetch(u).then(r => r.status)", path)
        check(status == 401, f"{path} answers {status} after sign-out")
    p.reload()
    p.wait_for_selector("#signin-key", state="visible")


def sc_isolation(ui, seed):
    p = ui.page
    ui.sign_in(GLOBEX_ADMIN)
    check("globex" in p.text_content("#tenant"), "not signed in as globex")
    p.click("#history-btn")
    check(seed.marker not in p.text_content("#history-menu"), "globex's query history shows acme's queries")
    p.keyboard.press("Escape")
    ui.query(seed.marker, 0)
    ui.query(seed.q, 0)
    ui.query(seed.secret, 1)
    p.fill("#query", f'request_id:"{seed.rid}"')
    p.click("#run")
    ui.wait_results(1)
    ui.sign_out()
    ui.sign_in(ACME_ADMIN)
    ui.query(seed.secret, 0)
    ui.query("", None)
    check(seed.secret not in p.content(), "acme's page holds globex's secret word")
    p.fill("#query", f'request_id:"{seed.rid}"')
    p.click("#run")
    ui.wait_results(3)
    check(seed.secret not in p.content(), "acme's page holds globex's secret word")


def sc_phone(ui, seed):
    p = ui.page
    p.set_viewport_size({"width": 390, "height": 800})
    ui.query(seed.q, seed.total)
    check(not p.locator("#sidebar").is_visible() or p.locator("#sidebar").bounding_box()["x"] < 0,
          "the sidebar is not collapsed at phone width")
    p.click("#sidebar-toggle")
    p.wait_for_function("() => document.querySelector('#sidebar').getBoundingClientRect().x >= 0")
    p.wait_for_timeout(300)
    ui.shot("explore-phone-fields")
    p.click("#sidebar-close")
    p.wait_for_function("() => document.querySelector('#sidebar').getBoundingClientRect().right <= 0")
    ui.shot("explore-phone")
    p.set_viewport_size({"width": 1280, "height": 800})


def sc_session_expiry(ui, seed):
    p = ui.page
    ui.query(seed.q, None)
    p.context.clear_cookies()
    p.click("#run")
    p.wait_for_selector("#signin-key", state="visible")
    check(p.is_visible("#signin-error") and "sign in" in p.text_content("#signin-error").lower(),
          "no message about the ended session")
    check(p.locator("#results-body tr.hit-row").count() == 0, "results stay after the session ended")
    ui.sign_in(ACME_ADMIN)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("base")
    ap.add_argument("--wasm", required=True)
    ap.add_argument("--shots", required=True)
    ap.add_argument("--bulk-type", required=True, help="the log type of archived objects to replay and cancel")
    ap.add_argument("--bulk-objects", type=int, required=True, help="how many such objects there are")
    ap.add_argument("--only", help="comma-separated scenario names (after sign-in)")
    args = ap.parse_args()
    base = args.base.rstrip("/")
    os.makedirs(args.shots, exist_ok=True)

    seed = Seed(base)
    seed.send()
    print(f"seeded {seed.total} acme events (marker {seed.marker}) and 1 globex event", flush=True)

    scenarios = [
        ("csp", sc_csp), ("sign_in", sc_sign_in), ("query", sc_query), ("query_error", sc_query_error),
        ("zoom", sc_zoom), ("expand", sc_expand), ("keyboard", sc_keyboard), ("field_filter", sc_field_filter),
        ("trace", sc_trace), ("copy_as", sc_copy_as), ("saved", sc_saved), ("load_more", sc_load_more), ("live_tail", sc_live_tail),
        ("filters", lambda ui, s: sc_filters(ui, s, args.wasm)), ("replay", lambda ui, s: sc_replay(ui, s, args.bulk_type, args.bulk_objects)),
        ("admin_views", sc_admin_views), ("phone", sc_phone), ("xss", sc_xss),
        ("sign_out", sc_sign_out), ("isolation", sc_isolation), ("session_expiry", sc_session_expiry),
    ]
    if args.only:
        keep = set(args.only.split(",")) | {"csp", "sign_in"}
        scenarios = [s for s in scenarios if s[0] in keep]

    passed = 0
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"),
                                     args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        try:
            context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
        except Exception:
            pass
        page = context.new_page()
        page.set_default_timeout(10000)
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" and "401" not in m.text and "400" not in m.text and "403" not in m.text else None)
        ui = UI(page, base, args.shots)
        for name, fn in scenarios:
            try:
                fn(ui, seed)
                if errors:
                    raise Failure("page errors: " + " | ".join(errors[:5]))
            except Exception as e:  # Failure, or a Playwright timeout
                lines = str(e).strip().splitlines()
                msg = " | ".join(l.strip() for l in lines[:8]) if lines else type(e).__name__
                print(f"FAIL {name}: {msg}", flush=True)
                try:
                    ui.shot("FAILED-" + name)
                except Exception:
                    pass
                print(f"{passed} passed, 1 failed")
                browser.close()
                sys.exit(1)
            print(f"OK {name}", flush=True)
            passed += 1
        browser.close()
    print(f"{passed} passed, 0 failed")


if __name__ == "__main__":
    main()
