"""How long the verified export takes at full size, and what the page's sliders cost.

A full-size benchmark (1,097 RMGAP-shaped records, 13,164 items, long-tailed
response lengths) with 3 labels per item from 12 annotators (the same labels
as bench/report_speed.py), then: the per-item tally (redone when labels
change), applying the rule (every slider move), and `export-verified` at
record and item level, without and with the analytics (card + report.html).
Run: .venv/bin/python bench/export_speed.py
"""

from __future__ import annotations

import os
import random
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from report_speed import seed_labels  # noqa: E402

from rmgap_annot.formats.rmgap import import_benchmark  # noqa: E402
from rmgap_annot.db import get_engine, init_db  # noqa: E402
from rmgap_annot.export import Rule, apply_rule, item_stats, load_analytics, write_export  # noqa: E402
from rmgap_annot.labels_frame import load_items, load_labels  # noqa: E402
from rmgap_annot.synthetic import make_records, write_jsonl  # noqa: E402


def timed(fn, repeats: int = 3) -> tuple[float, object]:  # noqa: ANN001
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        url = f"sqlite:///{tmp / 'bench.sqlite'}"
        init_db(url)
        engine = get_engine(url)
        bid = import_benchmark(engine=engine, path=write_jsonl(tmp / "test.jsonl", make_records())).benchmark_id
        n_labels = seed_labels(engine, bid, random.Random(0))
        print(f"setup: 13,164 items, {n_labels:,} labels")

        t_load, labels = timed(lambda: load_labels(engine=engine, benchmark_id=bid))
        items = load_items(engine=engine, benchmark_id=bid)
        t_tally, stats = timed(lambda: item_stats(labels=labels, items=items))
        t_rule, verdicts = timed(lambda: apply_rule(stats, Rule()), repeats=10)
        print(f"load labels: {t_load:.2f} s; tally per item: {t_tally:.2f} s; apply the rule (a slider move): {t_rule * 1000:.0f} ms"
              f" ({int(verdicts['verified'].sum()):,} items verified)")

        skip = (None, "skipped in this measurement")
        runs = {
            "record level, no analytics": dict(level="record", analytics=skip),
            "item level, no analytics": dict(level="item", analytics=skip),
            "record level, with analytics": dict(level="record", analytics=None),
        }
        for label, kwargs in runs.items():
            def run(kwargs=kwargs, label=label):  # noqa: ANN001, ANN202
                return write_export(engine=engine, benchmark_id=bid, out_dir=tmp / label.replace(" ", "_"), force=True, **kwargs)

            t, result = timed(run, repeats=2)
            sizes = ", ".join(f"{p.name} {os.path.getsize(p) / 1e6:.1f} MB" for p in result.files)
            print(f"export-verified, {label}: median {t:.2f} s ({sizes})")
        t, _ = timed(lambda: load_analytics(engine=engine, benchmark_id=bid), repeats=1)
        print(f"  of which the analytics report: {t:.2f} s")
        print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB; load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
