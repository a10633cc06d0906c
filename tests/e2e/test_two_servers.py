"""Two app servers on one database, as deploy/ runs them behind a proxy: SQLite and PostgreSQL.

Two annotators label through different servers at the same time, then one
of them moves to the other server (as after a proxy failover) and goes on.
The database must hold every acknowledged label once, each annotator's
labels on distinct items, and no item beyond its label target.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from rmgap_annot.accounts import create_user
from rmgap_annot.assignment import update_study
from rmgap_annot.formats.rmgap import import_benchmark
from rmgap_annot.db import dispose_engines, get_engine, init_db, session_scope
from rmgap_annot.models import Label, User
from rmgap_annot.synthetic import make_records, write_jsonl
from tests.e2e.conftest import WAIT_MS, AppServer, log_in, pick_and_submit

pytestmark = pytest.mark.e2e
PASSWORD = "long-enough-password"
QUOTA = 4


@pytest.fixture
def servers(backend_url, tmp_path):
    init_db(backend_url)
    engine = get_engine(backend_url)
    records = make_records({"Chat": 2, "Writing": 2, "Reasoning": 1, "Safety": 1}, seed=11, long_text=False)
    bid = import_benchmark(engine=engine, path=write_jsonl(tmp_path / "b.jsonl", records), name="two").benchmark_id
    update_study(engine=engine, benchmark_id=bid, quota_per_annotator=QUOTA, labels_per_item=1)
    for name in ("ann1", "ann2"):
        create_user(engine=engine, name=name, role="annotator", password=PASSWORD)
    dispose_engines()
    started = []
    try:
        for n in range(2):
            started.append(AppServer(backend_url, tmp_path / f"streamlit-{n}.log"))
        yield started
    finally:
        for srv in started:
            srv.stop()


def submit(page, done_after: int) -> None:  # noqa: ANN001
    pick_and_submit(page, "A", 3)
    page.get_by_text(f"{done_after} of {QUOTA} labelled").wait_for(timeout=WAIT_MS)


def test_annotators_label_through_two_servers_on_one_database(servers, browser, backend_url):
    one, two = servers
    p1 = browser.new_page(viewport={"width": 1400, "height": 1000})
    p2 = browser.new_page(viewport={"width": 1400, "height": 1000})
    log_in(p1, one.url, "ann1", PASSWORD)
    log_in(p2, two.url, "ann2", PASSWORD)
    for done in range(1, 3):  # interleaved: each server claims while the other writes
        submit(p1, done)
        submit(p2, done)
    p1.close()
    moved = browser.new_page(viewport={"width": 1400, "height": 1000})
    log_in(moved, two.url, "ann1", PASSWORD)  # the same annotator, now through the other server
    moved.get_by_text(f"2 of {QUOTA} labelled").wait_for(timeout=WAIT_MS)
    submit(moved, 3)
    submit(p2, 3)
    moved.close()
    p2.close()

    engine = get_engine(backend_url)
    with session_scope(engine) as s:
        rows = s.execute(select(User.name, Label.item_id).join(User, User.id == Label.user_id)).all()
        per_item = s.execute(select(Label.item_id, func.count()).group_by(Label.item_id)).all()
    assert sorted(name for name, _ in rows) == ["ann1"] * 3 + ["ann2"] * 3
    assert len({item for _, item in rows}) == 6  # distinct items: no claim was given twice
    assert all(n == 1 for _, n in per_item)  # labels_per_item=1: no item over its target
