"""The annotate page as an annotator feels it: 50 items in pick mode, keyboard only, in Chromium.

Starts `streamlit run app.py` on a fresh database (60 records, quota 50),
logs in, confirms the guidelines, then for each item scrolls down as a
reader would, presses a letter, a digit and Enter, and measures

- keystrokes per item (the target is 3),
- submit-to-interactive: from the Enter key until the next item's prompt is
  drawn, nothing is stale or running, and the keyboard listens (p50/p95),
- the scroll position once the next item is up (the target is 0).

    python bench/ui_latency.py [--items 50] [--json]

Chromium is the system's (`shutil.which("chromium")`). Times include
Playwright's round trips (a few ms): the annotator's own wait is not longer.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rmgap_annot.accounts import create_user  # noqa: E402
from rmgap_annot.assignment import update_study  # noqa: E402
from rmgap_annot.formats.rmgap import import_benchmark  # noqa: E402
from rmgap_annot.synthetic import make_records, write_jsonl  # noqa: E402
from tests.e2e.conftest import CHROMIUM_ARGS, AppServer, settle  # noqa: E402

PASSWORD = "bench-password-1"
INTERACTIVE = """(old) => {
  const p = document.querySelector('.st-key-rmgap-prompt');
  return !!p && p.innerText !== old && !!window.__rmgapKeyboard
    && !document.querySelector("[data-stale='true'], [data-testid='stStatusWidgetRunningIcon']");
}"""
SCROLL = "() => Math.round(document.querySelector(\"[data-testid='stMain']\").scrollTop + window.scrollY)"


def pct(values: list[float], q: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def prepare(folder: Path, n_items: int) -> str:
    from rmgap_annot.db import dispose_engines, get_engine, init_db

    url = f"sqlite:///{folder / 'ui.sqlite'}"
    init_db(url)
    engine = get_engine(url)
    per_domain = max(4, n_items // 4 + 3)
    records = make_records(dict.fromkeys(("Chat", "Writing", "Reasoning", "Safety"), per_domain), seed=11, long_text=True)
    bid = import_benchmark(engine=engine, path=write_jsonl(folder / "ui.jsonl", records), name="ui").benchmark_id
    update_study(engine=engine, benchmark_id=bid, quota_per_annotator=n_items)
    create_user(engine=engine, name="annie", role="annotator", password=PASSWORD)
    dispose_engines()
    return url


def run(n_items: int) -> dict:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        server = AppServer(prepare(folder, n_items), folder / "streamlit.log")
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS, headless=True)
                page = browser.new_page(viewport={"width": 1440, "height": 900})
                page.goto(server.url)
                page.get_by_role("textbox", name="Username").fill("annie")
                page.get_by_role("textbox", name="Password").fill(PASSWORD)
                page.get_by_role("button", name="Log in").click()
                page.get_by_role("button", name="I have read the guidelines: start").click()
                page.locator(".st-key-rmgap-prompt").wait_for(timeout=30_000)
                page.wait_for_function("() => !!window.__rmgapKeyboard", timeout=30_000)
                settle(page)
                keystrokes, latencies, scrolls = [], [], []
                for i in range(n_items):
                    old = page.locator(".st-key-rmgap-prompt").inner_text()
                    page.mouse.move(700, 500)
                    page.mouse.wheel(0, 700)  # reading down the responses
                    page.wait_for_timeout(50)
                    keys = ["ABCD"[i % 4], str(1 + i % 5)]
                    for key in keys:
                        page.keyboard.press(key)
                    settle(page)  # the digit's rerun is over: what follows times the submit alone
                    t0 = time.perf_counter()
                    page.keyboard.press("Enter")
                    keys.append("Enter")
                    if i == n_items - 1:
                        page.get_by_text("All done").wait_for(timeout=30_000)
                        latencies.append((time.perf_counter() - t0) * 1000)
                    else:
                        try:
                            page.wait_for_function(INTERACTIVE, arg=old, polling="raf", timeout=30_000)
                        except Exception:
                            shot = Path(tempfile.gettempdir()) / "ui_latency_failure.png"
                            page.screenshot(path=str(shot))
                            raise RuntimeError(f"item {i + 1}: the next item did not come up (screenshot: {shot})") from None
                        latencies.append((time.perf_counter() - t0) * 1000)
                        scrolls.append(page.evaluate(SCROLL))
                    keystrokes.append(len(keys))
                browser.close()
        finally:
            server.stop()
    return {
        "items": n_items,
        "keystrokes_per_item": statistics.mean(keystrokes),
        "submit_to_interactive_ms": {"p50": round(pct(latencies, 50), 1), "p95": round(pct(latencies, 95), 1),
                                     "max": round(max(latencies), 1)},
        "scroll_after_submit_px": {"max": max(scrolls) if scrolls else 0, "nonzero": sum(1 for s in scrolls if s)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=50)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not shutil.which("chromium"):
        sys.exit("chromium is not installed")
    r = run(args.items)
    if args.json:
        print(json.dumps(r))
        return
    print(f"{r['items']} items in pick mode, keyboard only, Chromium 1440x900")
    print(f"keystrokes per item: {r['keystrokes_per_item']:.1f}")
    lat = r["submit_to_interactive_ms"]
    print(f"submit to interactive: p50 {lat['p50']:.0f} ms, p95 {lat['p95']:.0f} ms, max {lat['max']:.0f} ms")
    print(f"scroll position after submit: max {r['scroll_after_submit_px']['max']} px "
          f"({r['scroll_after_submit_px']['nonzero']} of {r['items'] - 1} not at the top)")


if __name__ == "__main__":
    main()
