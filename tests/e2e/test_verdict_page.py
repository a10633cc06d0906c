"""The verdict at a glance is the first thing on the Results page, in real Chromium (issue 15 item 2)."""

from __future__ import annotations

import os

import pytest

from rmgap_annot.accounts import create_user
from rmgap_annot.formats.rmgap import import_benchmark
from rmgap_annot.synthetic import make_records, write_jsonl
from tests.analytics_helpers import add_labels, winners
from tests.e2e.conftest import WAIT_MS, settle, start_server

pytestmark = pytest.mark.e2e
PASSWORD = "rita-password-123"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")

    def prepare(engine):  # noqa: ANN001
        records = make_records({"Chat": 2, "Writing": 2, "Reasoning": 2, "Safety": 2}, seed=1, long_text=False)
        bid = import_benchmark(engine=engine, path=write_jsonl(folder / "v.jsonl", records), name="v").benchmark_id
        create_user(engine=engine, name="rita", role="researcher", password=PASSWORD)
        add_labels(engine, [{"annotator": a, "item_id": i, "choice": w, "naturalness": 4} for i, w in winners(engine, bid).items()
                            for a in "abc"])

    srv = start_server(tmp_path_factory, prepare)
    yield srv
    srv.stop()


def test_results_page_opens_with_the_verdict(server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(server.url)
    page.get_by_role("textbox", name="Username").fill("rita")
    page.get_by_role("textbox", name="Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="Results").click(timeout=WAIT_MS)
    heading = page.get_by_role("heading", name="Verdict at a glance")
    heading.wait_for(timeout=WAIT_MS)
    settle(page)
    first_tab = page.get_by_role("tab", name="Agreement")
    first_tab.wait_for(timeout=WAIT_MS)
    # above the tabs, and above every other section heading of the report
    assert heading.bounding_box()["y"] < first_tab.bounding_box()["y"]
    page.get_by_text("Rule: ✓ pass / ✗ fail / ? unclear", exact=False).wait_for(timeout=WAIT_MS)
    # every item labelled 3 times with the winner: people confirm the winner everywhere, said in the generated sentence
    page.get_by_text("People confirmed the designated winner on 100%", exact=False).first.wait_for(timeout=WAIT_MS)
    if os.environ.get("RMGAP_E2E_SCREENSHOT"):
        page.screenshot(path=os.environ["RMGAP_E2E_SCREENSHOT"], full_page=False)
    page.close()
