"""Truth inference, two-way intervals and planning on the full benchmark's size.

The same data as bench/report_speed.py (13,164 items, ~40,000 labels from 12
annotators). Times one fit of each crowd-kit model (what `report --fit-truth`
pays once per set of labels), the report reading the cached fits (what every
later report pays), the report with `--resample annotators`, and the
plans. Prints the figures quoted in the README (section extras).

    .venv/bin/python bench/truth_speed.py
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report_speed import N_ANNOTATORS, labelled_benchmark  # noqa: E402

from rmgap_annot.db import dispose_engines  # noqa: E402
from rmgap_annot.exclusions import counted_labels  # noqa: E402
from rmgap_annot.report import build_report  # noqa: E402
from rmgap_annot.stats import planning, truth  # noqa: E402


def timed(fn):  # noqa: ANN001, ANN201
    """(result, wall seconds); CPU seconds of the last call in ``timed.cpu`` (the machine may be shared)."""
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    timed.cpu = time.process_time() - c0
    return out, time.perf_counter() - t0


def main() -> None:
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as tmp:
        engine, bid, n_labels = labelled_benchmark(Path(tmp), rng)
        labels = counted_labels(engine=engine, benchmark_id=bid).labels
        data = truth.crowd_frame(labels, truth.key_positions(engine=engine, benchmark_id=bid))
        print(f"labels: {n_labels} ({len(data)} decided), annotators: {N_ANNOTATORS}")
        for method in truth.FITTED:
            fitted, secs = timed(lambda m=method: truth.fit(data, m))
            print(f"{method} fit: {secs:.1f} s wall, {timed.cpu:.1f} s CPU")
        _, fit_all = timed(lambda: build_report(engine=engine, benchmark_id=bid, fit_truth=True))
        print(f"report --fit-truth (both fits, stored): {fit_all:.1f} s")
        times, cpus = [], []
        for _ in range(3):
            times.append(timed(lambda: build_report(engine=engine, benchmark_id=bid))[1])
            cpus.append(timed.cpu)
        print(f"report with cached fits, 1,000 draws: median {statistics.median(times):.2f} s wall, "
              f"{statistics.median(cpus):.2f} s CPU (runs {', '.join(f'{t:.2f}' for t in times)})")
        _, two_way = timed(lambda: build_report(engine=engine, benchmark_id=bid, resample="annotators"))
        print(f"report --resample annotators, 1,000 draws: {two_way:.1f} s wall, {timed.cpu:.1f} s CPU")
        for metric in planning.METRICS:
            _, secs = timed(lambda m=metric: planning.plan_for_benchmark(engine=engine, benchmark_id=bid, metric=m,
                                                                         half_width=0.05, labels_per_item=3))
            print(f"plan --metric {metric}: {secs:.2f} s wall, {timed.cpu:.2f} s CPU")
        dispose_engines()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
