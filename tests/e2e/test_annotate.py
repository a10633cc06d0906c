"""An annotator labels in real Chromium: log in, three items, refresh, Back, then the database."""

from __future__ import annotations

import json
import re
import time

import pytest
from sqlalchemy import select

from rmgap_annot.accounts import create_user
from rmgap_annot.annotation import LETTERS, confirm_guidelines
from rmgap_annot.assignment import update_study
from rmgap_annot.formats.rmgap import import_benchmark
from rmgap_annot.db import get_engine, session_scope
from rmgap_annot.models import Label
from rmgap_annot.synthetic import make_records, write_jsonl
from tests.e2e.conftest import WAIT_MS, log_in, pick_and_submit, settle, start_server

pytestmark = pytest.mark.e2e
PASSWORD = "alice-password-1"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")

    def prepare(engine):  # noqa: ANN001
        records = make_records({"Chat": 2, "Writing": 1, "Reasoning": 1, "Safety": 1}, seed=3, long_text=False)
        bid = import_benchmark(engine=engine, path=write_jsonl(folder / "b.jsonl", records), name="e2e").benchmark_id
        update_study(engine=engine, benchmark_id=bid, quota_per_annotator=3)
        uid = create_user(engine=engine, name="alice", role="annotator", password=PASSWORD)
        confirm_guidelines(engine=engine, user_id=uid, benchmark_id=bid)

    srv = start_server(tmp_path_factory, prepare)
    yield srv
    srv.stop()


def prompt_text(page) -> str:  # noqa: ANN001
    return page.locator("[data-testid='stMarkdownContainer']", has_text=re.compile(r"\[\S+ g\d\]")).first.inner_text()


def next_prompt(page, old: str) -> str:  # noqa: ANN001
    """The prompt once the page shows a different item (the old one lingers during a rerun)."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while time.monotonic() < deadline:
        text = prompt_text(page)
        if text != old:
            settle(page)
            return prompt_text(page)
        page.wait_for_timeout(100)
    raise AssertionError(f"the page still shows {old!r}")


def answer(page, letter: str, naturalness: int, done_after: int) -> None:  # noqa: ANN001
    pick_and_submit(page, letter, naturalness)
    page.get_by_text(f"{done_after} of 3 labelled").wait_for(timeout=WAIT_MS)


def test_label_three_items_with_refresh_and_back(server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    log_in(page, server.url, "alice", PASSWORD)
    page.get_by_text("0 of 3 labelled").wait_for(timeout=WAIT_MS)
    expected = []  # (prompt, letter, naturalness), in labelling order

    first = prompt_text(page)
    answer(page, "B", 4, 1)
    expected.append((first, "B", 4))

    # Refresh in the middle: still logged in (server-side session), the same item is back.
    second = next_prompt(page, first)
    page.reload()
    page.get_by_text("1 of 3 labelled").wait_for(timeout=WAIT_MS)
    assert prompt_text(page) == second
    answer(page, "D", 2, 2)
    expected.append((second, "D", 2))

    third = next_prompt(page, second)
    answer(page, "A", 5, 3)
    expected.append((third, "A", 5))
    page.get_by_text("All done").wait_for(timeout=WAIT_MS)

    # Back re-opens the last label, pre-filled; change it.
    settle(page)
    page.get_by_role("button", name="Back").click()
    page.get_by_text("You are correcting a label").wait_for(timeout=WAIT_MS)
    settle(page)
    assert prompt_text(page) == third
    form = page.locator(".st-key-rmgap-answer")
    assert form.get_by_role("radio", name="A [A]").is_checked()
    form.get_by_text("C [C]", exact=True).click()
    settle(page)
    form.get_by_role("button", name="Submit").click()
    page.get_by_text("All done").wait_for(timeout=WAIT_MS)
    expected[2] = (third, "C", 5)
    page.close()

    engine = get_engine(server_db(server))
    with session_scope(engine) as s:
        from rmgap_annot.models import Item

        rows = s.execute(select(Label, Item.text).join(Item, Item.id == Label.item_id).order_by(Label.id)).all()
    assert len(rows) == 3
    for (lab, text), (prompt, letter, nat) in zip(rows, expected):
        assert text == prompt
        order = json.loads(lab.displayed_order_json)
        assert lab.choice_key == order[LETTERS.index(letter)]  # a key, never the letter
        assert lab.naturalness == nat and lab.source == "ui"
        assert lab.shown_at is not None and lab.shown_at <= lab.first_submitted_at
    assert [lab.revisions for lab, _ in rows] == [0, 0, 1]
    assert rows[2][0].submitted_at > rows[2][0].first_submitted_at


def server_db(server) -> str:  # noqa: ANN001
    return server.db_url
