"""How long one refresh of the Quality page takes on the full benchmark's size.

13,164 items, 3 labels per item from 12 annotators (about 40,000 labels,
bench/report_speed.py's seeding), members with platform ids, and 60 attention
checks per annotator; then ``monitor.study_quality`` (what the page and
``crowd report`` compute on every refresh), without and with a cached
Dawid-Skene/MACE fit to look up. Prints the figures quoted in the README
(section quality-control).

    .venv/bin/python bench/quality_speed.py
"""

from __future__ import annotations

import json
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert, select, update  # noqa: E402

from rmgap_annot.assignment import get_study  # noqa: E402
from rmgap_annot.crowd.monitor import study_quality  # noqa: E402
from rmgap_annot.db import dispose_engines, session_scope  # noqa: E402
from rmgap_annot.models import CheckItem, CheckLabel, StudyMember, utcnow  # noqa: E402
from rmgap_annot.report import build_report  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report_speed import labelled_benchmark  # noqa: E402

CHECKS_PER_ANNOTATOR = 60


def seed_checks(engine, study_id: int, rng: random.Random) -> None:
    now = utcnow()
    with session_scope(engine, write=True) as session:
        users = list(session.execute(select(StudyMember.user_id).where(StudyMember.study_id == study_id)).scalars())
        session.execute(update(StudyMember).where(StudyMember.study_id == study_id)
                        .values(platform="prolific", participant_id="5f3a9c0b1d2e4f5a6b7c8d9e"[:20]))
        items = []
        for n in range(CHECKS_PER_ANNOTATOR):
            item = CheckItem(study_id=study_id, kind="check", check_id=f"c{n}", position=n, prompt="p",
                             responses_json=json.dumps([["a", "x"], ["b", "y"]]), expected_json='["a"]')
            session.add(item)
            items.append(item)
        session.flush()
        rows = [{"study_id": study_id, "user_id": u, "check_item_id": it.id, "choice_key": "a", "correct": rng.random() < 0.9,
                 "shown_at": now - timedelta(seconds=rng.uniform(5, 60)), "submitted_at": now}
                for u in users for it in items]
        session.execute(insert(CheckLabel), rows)


def main() -> None:
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as tmp:
        engine, bid, n_labels = labelled_benchmark(Path(tmp), rng)
        sid = get_study(engine=engine, benchmark_id=bid).id
        build_report(engine=engine, benchmark_id=bid, draws=0)  # members for the bulk-inserted labels
        seed_checks(engine, sid, rng)
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            q = study_quality(engine=engine, study_id=sid)
            times.append(time.perf_counter() - t0)
        build_report(engine=engine, benchmark_id=bid, draws=0, fit_truth=True)
        fitted = []
        for _ in range(5):
            t0 = time.perf_counter()
            q2 = study_quality(engine=engine, study_id=sid)
            fitted.append(time.perf_counter() - t0)
        dispose_engines()
    assert all(r.competence["mace"] is not None for r in q2.annotators)
    print(f"labels: {n_labels}, people: {len(q.annotators)}, check answers: {len(q.annotators) * CHECKS_PER_ANNOTATOR}")
    print(f"study_quality (no fit cached): median {statistics.median(times):.2f} s, best {min(times):.2f} s")
    print(f"study_quality (fit cached, competence read): median {statistics.median(fitted):.2f} s, best {min(fitted):.2f} s")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
