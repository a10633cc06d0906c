"""Server-side latency of the annotator's loop on a full-size benchmark.

Builds RMGAP's size (1,097 records, 13,164 items) from synthetic records of
the real shape, bulk-stores ~40,000 labels from 50 annotators (respecting
one item per record per annotator), then times what one Submit costs on the
server: store the label, then choose and claim the next item; and, apart,
everything the annotate page computes per item (next item, progress,
blinded view, Back target). Finally the page's render time via AppTest.

    python bench/annotation_latency.py [--iterations 300] [--renders 10]

Labels per item is set to 5 for the run, so the study still has open slots
with ~40,000 labels stored (at the default 3 it would be complete).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, select  # noqa: E402

from rmgap_annot import annotation, assignment  # noqa: E402
from rmgap_annot.accounts import create_user  # noqa: E402
from rmgap_annot.formats.rmgap import import_benchmark  # noqa: E402
from rmgap_annot.db import get_engine, init_db, session_scope  # noqa: E402
from rmgap_annot.models import Item, Label, utcnow  # noqa: E402
from rmgap_annot.synthetic import make_records, write_jsonl  # noqa: E402

N_ANNOTATORS = 50
TARGET_LABELS = 40_000


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def fmt(ms: list[float]) -> str:
    return f"p50 {pct(ms, 50):.1f} ms, p95 {pct(ms, 95):.1f} ms, max {max(ms):.1f} ms (n={len(ms)})"


def bulk_labels(engine, benchmark_id: int, users: list[int]) -> int:  # noqa: ANN001
    """~40,000 labels; the annotators of one record's twelve items are disjoint."""
    study_id = assignment.get_study(engine=engine, benchmark_id=benchmark_id).id
    with session_scope(engine) as s:
        items = s.execute(
            select(Item.id, Item.record_pk).where(Item.benchmark_id == benchmark_id).order_by(Item.record_pk, Item.id)
        ).all()
        keys = {pk: k for pk, k in s.execute(select(Item.record_pk, Item.winner_key).where(Item.benchmark_id == benchmark_id))}
    extra = TARGET_LABELS - 3 * len(items)  # items that get a 4th label
    rows, now, pos = [], utcnow(), {}
    for n, (item_id, pk) in enumerate(items):
        k = pos.get(pk, 0)
        pos[pk] = k + 1
        n_labels = 4 if n % max(1, len(items) // max(1, extra)) == 0 and extra > 0 else 3
        extra -= n_labels == 4
        offset = (pk * 7) % N_ANNOTATORS
        for j in range(n_labels):
            uid = users[(offset + 4 * k + j) % N_ANNOTATORS]
            rows.append({"study_id": study_id, "user_id": uid, "item_id": item_id, "choice_key": keys[pk], "naturalness": 3 + j % 3,
                         "displayed_order_json": None, "source": "import", "first_submitted_at": now,
                         "submitted_at": now, "revisions": 0})
    with session_scope(engine, write=True) as s:
        s.execute(insert(Label), rows)
    return len(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=300)
    ap.add_argument("--renders", type=int, default=10)
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="rmgap-bench-"))
    url = f"sqlite:///{tmp / 'bench.sqlite'}"
    os.environ["RMGAP_ANNOT_DB"] = url
    init_db(url)
    engine = get_engine(url)
    t = time.perf_counter()
    path = write_jsonl(tmp / "full.jsonl", make_records())
    bid = import_benchmark(engine=engine, path=path, name="full").benchmark_id
    print(f"setup: full-size benchmark imported in {time.perf_counter() - t:.1f} s")
    assignment.update_study(engine=engine, benchmark_id=bid, labels_per_item=5)
    users = [create_user(engine=engine, name=f"a{i:02d}", role="annotator") for i in range(N_ANNOTATORS)]
    t = time.perf_counter()
    n = bulk_labels(engine, bid, users)
    with session_scope(engine) as s:
        n_items = s.execute(select(Item.id).where(Item.benchmark_id == bid)).all()
    print(f"setup: {len(n_items):,} items, {n:,} labels stored in {time.perf_counter() - t:.1f} s")

    # Existing annotators (with ~800 labels each) plus newcomers take turns.
    workers = users[:5] + [create_user(engine=engine, name=f"new{i}", role="annotator") for i in range(5)]
    submit_next, page_server = [], []
    current = {u: assignment.next_item(engine=engine, user_id=u, benchmark_id=bid) for u in workers}
    for i in range(args.iterations):
        uid = workers[i % len(workers)]
        item = current[uid]
        if item is None:
            continue
        view = annotation.item_for_annotator(engine=engine, user_id=uid, item_id=item)
        t0 = time.perf_counter()
        annotation.submit_label(engine=engine, user_id=uid, item_id=item, choice_key=view.keys[i % 4],
                                naturalness=1 + i % 5, comment="bench", displayed_order=list(view.keys))
        nxt = assignment.next_item(engine=engine, user_id=uid, benchmark_id=bid)
        t1 = time.perf_counter()
        # The rest of what the page computes for the next item.
        assignment.progress(engine=engine, user_id=uid, benchmark_id=bid)
        if nxt is not None:
            annotation.item_for_annotator(engine=engine, user_id=uid, item_id=nxt)
            annotation.label_for(engine=engine, user_id=uid, item_id=nxt)
        annotation.previous_label(engine=engine, user_id=uid, benchmark_id=bid)
        t2 = time.perf_counter()
        submit_next.append((t1 - t0) * 1000)
        page_server.append((t2 - t0) * 1000)
        current[uid] = nxt
    print(f"submit a label + claim the next item: {fmt(submit_next)}")
    print(f"  + everything else the page computes (progress, blinded view, Back): {fmt(page_server)}")

    from streamlit.testing.v1 import AppTest

    renders = []
    at = AppTest.from_file(str(ROOT / "pages" / "annotate.py"), default_timeout=60)
    at.session_state["user_id"] = workers[0]
    at.session_state["role"] = "annotator"
    at.run()  # warm-up (imports, engine)
    for _ in range(args.renders):
        t0 = time.perf_counter()
        at.run()
        renders.append((time.perf_counter() - t0) * 1000)
    assert not at.exception, at.exception
    print(f"annotate page render (AppTest, script run on the server): {fmt(renders)}")


if __name__ == "__main__":
    main()
