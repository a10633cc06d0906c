"""Many annotators at once against one database: nothing lost, nothing doubled.

Starts N simulated annotators as separate processes (real concurrency: each
has its own connection, as separate app servers or Streamlit sessions would),
each labelling up to M items through the same service functions the UI calls
(``assignment.next_item`` then ``annotation.submit_label``), with the study's
overlap target at 3. Prints throughput, p50/p95 latency and three counts that
must be 0; any exception (``database is locked`` included) counts as a failure.

    python bench/load.py                      # 50 annotators x 100 items, SQLite
    python bench/load.py --annotators 8 --items 15 --json
    python bench/load.py --db-url postgresql+psycopg://user@host/db

Exit status 1 when any of the zeros is not zero or any annotator failed.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select  # noqa: E402

from rmgap_annot.accounts import create_user  # noqa: E402
from rmgap_annot.annotation import item_for_annotator, submit_label  # noqa: E402
from rmgap_annot.assignment import next_item, update_study  # noqa: E402
from rmgap_annot.formats.rmgap import import_benchmark  # noqa: E402
from rmgap_annot.db import dispose_engines, get_engine, init_db, session_scope  # noqa: E402
from rmgap_annot.models import Label  # noqa: E402
from rmgap_annot.synthetic import make_records, write_jsonl  # noqa: E402


def setup(*, db_url: str, n_annotators: int, n_records: int, labels_per_item: int, workdir: Path) -> tuple[int, list[int]]:
    """A database with a synthetic benchmark, a study and the annotator accounts."""
    init_db(db_url)
    engine = get_engine(db_url)
    per_domain = max(1, n_records // 4)
    records = make_records({d: per_domain for d in ("Chat", "Writing", "Reasoning", "Safety")}, seed=11, long_text=False)
    bench_id = import_benchmark(engine=engine, path=write_jsonl(workdir / "load.jsonl", records), name="load").benchmark_id
    update_study(engine=engine, benchmark_id=bench_id, labels_per_item=labels_per_item)
    users = [create_user(engine=engine, name=f"annotator-{i:03d}", role="annotator") for i in range(n_annotators)]
    return bench_id, users


def annotator(db_url: str, user_id: int, bench_id: int, n_items: int, start, results) -> None:  # noqa: ANN001
    """One simulated person: fetch the next item, answer it, repeat."""
    dispose_engines()  # never share a parent's connections across fork
    engine = get_engine(db_url)
    rng = random.Random(user_id)
    acks: list[tuple[int, int, int]] = []
    latencies: list[float] = []
    errors: list[str] = []
    start.wait()
    try:
        for _ in range(n_items):
            t0 = time.perf_counter()
            item_id = next_item(engine=engine, user_id=user_id, benchmark_id=bench_id)
            if item_id is None:
                break
            shown = item_for_annotator(engine=engine, user_id=user_id, item_id=item_id)
            keys = list(shown.keys)
            label_id = submit_label(
                engine=engine, user_id=user_id, item_id=item_id, choice_key=rng.choice(keys),
                naturalness=rng.randint(1, 5), displayed_order=keys,
            )
            latencies.append(time.perf_counter() - t0)
            acks.append((label_id, user_id, item_id))
    except Exception:  # noqa: BLE001 - every failure is reported, "database is locked" included
        errors.append(traceback.format_exc(limit=3))
    results.put({"user_id": user_id, "acks": acks, "latencies": latencies, "errors": errors})


def verify(*, db_url: str, acks: list[tuple[int, int, int]], labels_per_item: int) -> dict[str, int]:
    """The three counts that must be 0."""
    engine = get_engine(db_url)
    with session_scope(engine) as session:
        stored = {tuple(r) for r in session.execute(select(Label.id, Label.user_id, Label.item_id)).all()}
        duplicates = session.execute(
            select(func.count()).select_from(
                select(Label.user_id, Label.item_id).group_by(Label.user_id, Label.item_id).having(func.count() > 1).subquery()
            )
        ).scalar_one()
        over = session.execute(
            select(func.count()).select_from(
                # On-time labels only: a late one (lease expired) is kept on purpose and counted apart.
                select(Label.item_id).where(Label.late.is_(False)).group_by(Label.item_id)
                .having(func.count() > labels_per_item).subquery()
            )
        ).scalar_one()
    missing = sum(1 for a in acks if tuple(a) not in stored)
    return {"acknowledged_but_missing": missing, "duplicate_annotator_item": int(duplicates), "items_over_target": int(over)}


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def run(*, db_url: str | None, n_annotators: int, n_items: int, labels_per_item: int = 3, n_records: int | None = None) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="rmgap-load-"))
    db_url = db_url or f"sqlite:///{workdir / 'load.sqlite'}"
    # One item per record per annotator: each needs n_items records, and the
    # records must offer enough slots for everyone.
    n_records = n_records or max(n_items * 2, -(-n_annotators * n_items // (12 * labels_per_item)) * 2, 8)
    bench_id, users = setup(db_url=db_url, n_annotators=n_annotators, n_records=n_records, labels_per_item=labels_per_item, workdir=workdir)
    dispose_engines()
    ctx = mp.get_context("fork")
    start, results = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=annotator, args=(db_url, u, bench_id, n_items, start, results)) for u in users]
    for p in procs:
        p.start()
    time.sleep(0.2)
    t0 = time.perf_counter()
    start.set()
    outs = [results.get(timeout=900) for _ in procs]
    wall = time.perf_counter() - t0
    for p in procs:
        p.join(timeout=60)
    acks = [tuple(a) for o in outs for a in o["acks"]]
    latencies = [x for o in outs for x in o["latencies"]]
    errors = [e for o in outs for e in o["errors"]]
    crashed = sum(1 for p in procs if p.exitcode != 0)
    zeros = verify(db_url=db_url, acks=acks, labels_per_item=labels_per_item)
    return {
        "backend": db_url.split(":", 1)[0],
        "annotators": n_annotators,
        "items_each": n_items,
        "labels_per_item": labels_per_item,
        "records": n_records,
        "labels": len(acks),
        "wall_s": round(wall, 2),
        "labels_per_s": round(len(acks) / wall, 1) if wall else 0.0,
        "p50_ms": round(_pct(latencies, 50) * 1000, 1),
        "p95_ms": round(_pct(latencies, 95) * 1000, 1),
        **zeros,
        "failures": len(errors) + crashed,
        "locked_errors": sum("database is locked" in e for e in errors),
        "first_error": errors[0] if errors else None,
        "cpus": os.cpu_count(),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--annotators", type=int, default=50)
    ap.add_argument("--items", type=int, default=100, help="items each annotator labels at most")
    ap.add_argument("--labels-per-item", type=int, default=3)
    ap.add_argument("--records", type=int, default=None, help="benchmark size (default: enough for everyone)")
    ap.add_argument("--db-url", default=None, help="database URL (default: a new SQLite file in a temp dir)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    r = run(db_url=args.db_url, n_annotators=args.annotators, n_items=args.items, labels_per_item=args.labels_per_item, n_records=args.records)
    if args.json:
        print(json.dumps(r))
    else:
        print(f"{r['annotators']} annotators x up to {r['items_each']} items ({r['backend']}, {r['records']} records, overlap {r['labels_per_item']}, {r['cpus']} CPUs)")
        print(f"labels stored: {r['labels']} in {r['wall_s']} s = {r['labels_per_s']} labels/s")
        print(f"latency per label (next item + show + submit): p50 {r['p50_ms']} ms, p95 {r['p95_ms']} ms")
        print(f"acknowledged but missing: {r['acknowledged_but_missing']}")
        print(f"duplicate (annotator, item) labels: {r['duplicate_annotator_item']}")
        print(f"items with more labels than their target: {r['items_over_target']}")
        print(f"failures: {r['failures']} (database is locked: {r['locked_errors']})")
        if r["first_error"]:
            print(r["first_error"], file=sys.stderr)
    bad = r["acknowledged_but_missing"] or r["duplicate_annotator_item"] or r["items_over_target"] or r["failures"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
