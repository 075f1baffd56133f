"""First paint of the web UI, for ui-bench: opens the page in the system
Chromium (Playwright, nothing downloaded) five times and prints the median
first contentful paint and the time until the first hits are on screen.
Usage: ui_paint.py BASE_URL (a gateway with the embedded defaults: no
sign-in)."""

import statistics
import sys
import time

from playwright.sync_api import sync_playwright


def main():
    base = sys.argv[1].rstrip("/")
    fcp, hits = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        for _ in range(5):
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            start = time.perf_counter()
            page.goto(base + "/?q=level:error&from=now-7d&to=now")
            page.wait_for_selector("tr.hit-row", timeout=30000)
            hits.append((time.perf_counter() - start) * 1000)
            fcp.append(page.evaluate(
                "performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? -1"))
            page.close()
        browser.close()
    print(f"page: first contentful paint p50 {statistics.median(fcp):.0f} ms, "
          f"first hits on screen p50 {statistics.median(hits):.0f} ms (5 loads, Chromium headless)")


if __name__ == "__main__":
    main()
