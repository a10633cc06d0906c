"""In real Chromium, an annotator's browser never fetches an image named in benchmark text.

Every prompt and response carries a Markdown image and an HTML ``<img>``
pointing at a tracker host; the test records every request the page makes.
"""

from __future__ import annotations

import pytest

from rmgap_annot.accounts import create_user
from rmgap_annot.formats.rmgap import import_benchmark
from rmgap_annot.synthetic import make_records, write_jsonl
from tests.e2e.conftest import log_in, settle, start_server

pytestmark = pytest.mark.e2e
PASSWORD = "bob-password-123"
TRACKER = "tracker.invalid"
BAIT = f' ![pixel](http://{TRACKER}/md.png) <img src="http://{TRACKER}/html.png"> [![badge](http://{TRACKER}/badge.png)](http://{TRACKER}/page)'


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")

    def prepare(engine):  # noqa: ANN001
        records = make_records({"Chat": 1}, seed=9, long_text=False)
        for rec in records:
            for response in rec["responses"]:
                response["text"] += BAIT
            for group in rec["prompt_groups"]:
                for prompt in group["prompts"]:
                    prompt["text"] += BAIT
        import_benchmark(engine=engine, path=write_jsonl(folder / "b.jsonl", records), name="images")
        create_user(engine=engine, name="bob", role="annotator", password=PASSWORD)

    srv = start_server(tmp_path_factory, prepare)
    yield srv
    srv.stop()


def test_markdown_images_become_links_and_nothing_is_fetched(server, browser):
    context = browser.new_context()
    requested: list[str] = []
    context.on("request", lambda request: requested.append(request.url))
    page = context.new_page()
    try:
        log_in(page, server.url, "bob", PASSWORD)
        settle(page)
        page.wait_for_timeout(500)
        assert page.locator(f"img[src*='{TRACKER}']").count() == 0
        assert page.locator(f"a[href='http://{TRACKER}/md.png']").count() == 5  # the prompt and four responses
        assert page.get_by_text(f'<img src="http://{TRACKER}/html.png">').count() >= 1  # HTML shows as text
        assert [u for u in requested if TRACKER in u] == []
    finally:
        context.close()
