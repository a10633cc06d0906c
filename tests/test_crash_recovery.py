"""SIGKILL in the middle of a stream of submissions loses no acknowledged label.

Runs on SQLite and on PostgreSQL (``backend_url``). On both, after every kill:
every acknowledged label is there, no (annotator, item) pair is labelled twice,
no item has more labels than the study's target, and the trigger-kept
``studyitem.n_labels`` counters equal the label rows. On SQLite the file
must also pass ``PRAGMA integrity_check``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest
from sqlalchemy import func, select

from rmgap_annot.accounts import create_user
from rmgap_annot.assignment import update_study
from rmgap_annot.formats.rmgap import import_benchmark
from rmgap_annot.db import dispose_engines, get_engine, is_sqlite, session_scope
from rmgap_annot.maintenance import integrity_check
from rmgap_annot.models import Label, StudyItem
from rmgap_annot.synthetic import make_records, write_jsonl

# The "app": label items for several annotators in turn and print each label
# id only after submit_label returned, i.e. after the commit was acknowledged.
SUBMITTER = textwrap.dedent(
    """
    import sys
    from rmgap_annot.annotation import item_for_annotator, submit_label
    from rmgap_annot.assignment import next_item
    from rmgap_annot.db import get_engine

    url, bench_id, users = sys.argv[1], int(sys.argv[2]), [int(u) for u in sys.argv[3].split(",")]
    engine = get_engine(url)
    print("ready", flush=True)
    active = list(users)
    while active:
        for user in list(active):
            item = next_item(engine=engine, user_id=user, benchmark_id=bench_id)
            if item is None:
                active.remove(user)
                continue
            keys = list(item_for_annotator(engine=engine, user_id=user, item_id=item).keys)
            label_id = submit_label(engine=engine, user_id=user, item_id=item, choice_key=keys[0], naturalness=4,
                                    comment="x" * 2000, displayed_order=keys)
            print(label_id, flush=True)
    print("done", flush=True)
    """
)


def _start(db_url: str, bench_id: int, users: list[int]) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", SUBMITTER, db_url, str(bench_id), ",".join(map(str, users))],
        stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout.readline().strip() == "ready"
    return proc


def _kill_after(proc: subprocess.Popen, n_acks: int) -> list[int]:
    """Read n acknowledgements, SIGKILL, then collect what was already printed."""
    acks: list[int] = []
    for line in proc.stdout:
        line = line.strip()
        if line == "done":
            break
        acks.append(int(line))
        if len(acks) >= n_acks:
            os.kill(proc.pid, signal.SIGKILL)
            break
    proc.wait(timeout=30)
    acks += [int(x) for x in proc.stdout.read().split() if x.isdigit()]
    return acks


LABELS_PER_ITEM = 3


@pytest.fixture
def db_url(backend_url: str) -> str:
    """This module's tests run on SQLite and on PostgreSQL."""
    return backend_url


def _consistency(db_url: str) -> dict[str, int]:
    """Counts that must all be 0 after a crash, on either backend."""
    with session_scope(get_engine(db_url)) as s:
        duplicates = s.execute(
            select(func.count()).select_from(
                select(Label.user_id, Label.item_id).group_by(Label.user_id, Label.item_id).having(func.count() > 1).subquery()
            )
        ).scalar_one()
        over = s.execute(
            select(func.count()).select_from(
                select(Label.item_id).group_by(Label.item_id).having(func.count() > LABELS_PER_ITEM).subquery()
            )
        ).scalar_one()
        counted = dict(s.execute(select(Label.item_id, func.count()).group_by(Label.item_id)).all())
        kept = dict(s.execute(select(StudyItem.item_id, StudyItem.n_labels)).all())
    stale = sum(1 for item, n in kept.items() if n != counted.get(item, 0))
    orphans = sum(1 for item in counted if item not in kept)
    return {"duplicate_annotator_item": duplicates, "items_over_target": over,
            "stale_n_labels": stale, "labels_outside_study": orphans}


ZEROS = dict.fromkeys(("duplicate_annotator_item", "items_over_target", "stale_n_labels", "labels_outside_study"), 0)


def test_sigkill_mid_stream_loses_no_acknowledged_label(engine, db_url, tmp_path):
    records = make_records({"Chat": 4, "Writing": 4, "Reasoning": 4, "Safety": 4}, seed=5, long_text=False)
    bench_id = import_benchmark(engine=engine, path=write_jsonl(tmp_path / "b.jsonl", records), name="b").benchmark_id
    update_study(engine=engine, benchmark_id=bench_id, labels_per_item=LABELS_PER_ITEM)
    users = [create_user(engine=engine, name=f"a{i}", role="annotator") for i in range(4)]
    dispose_engines()
    db_file = tmp_path / "test.sqlite"
    assert is_sqlite(db_url) == db_file.exists()  # the SQLite variant really uses this file

    acknowledged: list[int] = []
    for n_acks in (7, 13, 5):
        proc = _start(db_url, bench_id, users)
        assert proc.returncode is None
        acknowledged += _kill_after(proc, n_acks)
        assert proc.returncode == -signal.SIGKILL
        # After each kill: the database is sound and every acknowledged label is there.
        if is_sqlite(db_url):
            assert integrity_check(db_file) == "ok"
        assert _consistency(db_url) == ZEROS
        with session_scope(get_engine(db_url)) as s:
            stored = set(s.execute(select(Label.id)).scalars())
        assert set(acknowledged) <= stored
        dispose_engines()

    # Restarted, the app carries on to the end from where it was killed.
    proc = _start(db_url, bench_id, users)
    rest = [int(x) for x in proc.stdout.read().split() if x.isdigit()]
    assert proc.wait(timeout=120) == 0
    if is_sqlite(db_url):
        assert integrity_check(db_file) == "ok"
    assert _consistency(db_url) == ZEROS
    with session_scope(get_engine(db_url)) as s:
        stored = set(s.execute(select(Label.id)).scalars())
        pairs = s.execute(select(func.count()).select_from(select(Label.user_id, Label.item_id).distinct().subquery())).scalar_one()
    assert set(acknowledged + rest) <= stored
    assert pairs == len(stored)  # no (annotator, item) labelled twice across restarts
    # 16 records, one item per record per annotator: each of the 4 finishes 16.
    assert len(stored) == 4 * 16
