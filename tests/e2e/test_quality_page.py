"""The Quality page in real Chromium: it refreshes by itself as people arrive, and a block lands in the audit log."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from rmgap_annot.accounts import create_user
from rmgap_annot.annotation import item_for_annotator, submit_label
from rmgap_annot.assignment import next_item
from rmgap_annot.formats.rmgap import import_benchmark
from rmgap_annot.db import get_engine, session_scope
from rmgap_annot.models import StudyMember, User
from rmgap_annot.synthetic import make_records, write_jsonl
from tests.e2e.conftest import WAIT_MS, settle, start_server

pytestmark = pytest.mark.e2e
PASSWORD = "rita-password-123"


def _label(engine, name: str, bid: int) -> None:  # noqa: ANN001
    uid = create_user(engine=engine, name=name, role="annotator")
    item = next_item(engine=engine, user_id=uid, benchmark_id=bid)
    key = item_for_annotator(engine=engine, user_id=uid, item_id=item).keys[0]
    submit_label(engine=engine, user_id=uid, item_id=item, choice_key=key, naturalness=4)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")

    def prepare(engine):  # noqa: ANN001
        records = make_records({"Chat": 2, "Writing": 2, "Reasoning": 2, "Safety": 2}, seed=3, long_text=False)
        bid = import_benchmark(engine=engine, path=write_jsonl(folder / "b.jsonl", records), name="q").benchmark_id
        create_user(engine=engine, name="rita", role="researcher", password=PASSWORD)
        for name in ("a1", "a2"):
            _label(engine, name, bid)

    srv = start_server(tmp_path_factory, prepare)
    srv.benchmark_id = 1
    yield srv
    srv.stop()


def test_quality_page_refreshes_itself_and_audits_a_block(server, browser, tmp_path):
    page = browser.new_page(viewport={"width": 1500, "height": 1100})
    page.goto(server.url)
    page.get_by_role("textbox", name="Username").fill("rita")
    page.get_by_role("textbox", name="Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="Quality").click(timeout=WAIT_MS)
    page.get_by_text("2 people", exact=False).first.wait_for(timeout=WAIT_MS)
    page.get_by_text("No block, exclusion, deletion or settings change yet.").wait_for(timeout=WAIT_MS)
    # Someone new labels while the page is open: the table's part reruns on its own (every 10 s).
    engine = get_engine(server.db_url)
    _label(engine, "a3", server.benchmark_id)
    page.get_by_text("3 people", exact=False).first.wait_for(timeout=25_000)

    settle(page)
    page.get_by_role("button", name="Block", exact=True).click()
    page.get_by_role("button", name="Unblock", exact=True).wait_for(timeout=WAIT_MS)
    settle(page)
    assert page.get_by_text("No block, exclusion, deletion or settings change yet.").count() == 0
    with session_scope(engine) as s:
        blocked = s.execute(select(User.name).join(StudyMember, StudyMember.user_id == User.id)
                            .where(StudyMember.blocked_at.is_not(None))).scalars().all()
    assert len(blocked) == 1
    shot = tmp_path / "quality.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000  # a drawn page, not a blank one
    page.close()
