"""Untrusted benchmark text on the researcher pages, in real Chromium.

The annotate page is covered by test_blinding.py; here a researcher walks
through every page that can show benchmark text (Results and its item
detail, Reward models, Export) with <script> and <img onerror> payloads in
the prompts and responses: no dialog fires, no <img src=x> exists, and the
payloads read as text.
"""

from __future__ import annotations

import pytest

from rmgap_annot.accounts import create_user
from rmgap_annot.annotation import item_for_annotator, submit_label
from rmgap_annot.assignment import next_item
from rmgap_annot.formats.rmgap import import_benchmark
from rmgap_annot.synthetic import write_jsonl
from tests.e2e.conftest import WAIT_MS, settle, start_server
from tests.e2e.test_blinding import IMG, SCRIPT, sentinel_record

pytestmark = pytest.mark.e2e
PASSWORD = "rita-password-123"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")

    def prepare(engine):  # noqa: ANN001
        records = [sentinel_record(i, d) for i, d in enumerate(("Chat", "Writing", "Reasoning", "Safety"))]
        bid = import_benchmark(engine=engine, path=write_jsonl(folder / "x.jsonl", records), name="xss").benchmark_id
        create_user(engine=engine, name="rita", role="researcher", password=PASSWORD)
        for name in ("a1", "a2"):
            uid = create_user(engine=engine, name=name, role="annotator")
            for _ in range(3):
                item = next_item(engine=engine, user_id=uid, benchmark_id=bid)
                key = item_for_annotator(engine=engine, user_id=uid, item_id=item).keys[0]
                submit_label(engine=engine, user_id=uid, item_id=item, choice_key=key, naturalness=4)

    srv = start_server(tmp_path_factory, prepare)
    yield srv
    srv.stop()


def test_researcher_pages_show_html_as_text(server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(server.url)
    page.get_by_role("textbox", name="Username").fill("rita")
    page.get_by_role("textbox", name="Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="Results").wait_for(timeout=WAIT_MS)

    page.get_by_role("link", name="Results").click()
    page.get_by_role("tab", name="Items").click(timeout=WAIT_MS)
    # The item detail shows the prompt (with its <script>) and the responses (one with <img onerror>).
    page.get_by_text(SCRIPT, exact=False).first.wait_for(timeout=WAIT_MS)
    for expander in page.locator("[data-testid='stExpander'] summary").all():
        expander.click()
    page.get_by_text(IMG, exact=False).first.wait_for(timeout=WAIT_MS)
    settle(page)
    assert page.locator("img[src='x']").count() == 0
    # The referee tab (style levels come from the benchmark file too) renders in a real browser.
    page.get_by_role("tab", name="Referee analyses").click(timeout=WAIT_MS)
    page.get_by_text("Style profiles: accuracy by the winner's level").wait_for(timeout=WAIT_MS)
    page.get_by_text("Does human accuracy differ between domains?").wait_for(timeout=WAIT_MS)
    settle(page)
    assert page.locator("img[src='x']").count() == 0

    for title in ("Reward models", "Export"):
        page.get_by_role("link", name=title).click()
        page.get_by_role("heading").first.wait_for(timeout=WAIT_MS)
        settle(page)
        assert page.locator("img[src='x']").count() == 0
    assert not dialogs
    page.close()
