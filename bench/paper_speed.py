"""How long `rmgap-annot paper` takes on the full benchmark's size.

13,164 items (RMGAP's 1,097 records, synthetic texts), 3 labels per item from
12 annotators (bench/report_speed.py's labels), four imported scorers, and
(with --artifacts) the artifact checks fitted once beforehand so the artifact
table and figure are drawn too. Times separately: the report (1,000 draws),
reading the artifact cache, and writing the tables, numbers, macros and
figures (``write_paper``). Prints the figures quoted in the README (section
perf-paper).

    .venv/bin/python bench/paper_speed.py [--artifacts]
"""

from __future__ import annotations

import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import select

from bench.report_speed import N_ANNOTATORS, labelled_benchmark
from rmgap_annot.db import dispose_engines, session_scope
from rmgap_annot.models import Item, Record
from rmgap_annot.paper import write_paper
from rmgap_annot.report import build_report
from rmgap_annot.scores_io import import_scores
from rmgap_annot.stats import artifacts as A

N_SCORERS = 4


def main() -> None:
    fit = "--artifacts" in sys.argv
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["RMGAP_ANNOT_EXPORTS"] = str(Path(tmp) / "exports")
        engine, bid, n_labels = labelled_benchmark(Path(tmp), rng)
        with session_scope(engine) as s:
            items = s.execute(select(Record.record_id, Item.group, Item.prompt_index, Item.winner_key)
                              .join(Record, Record.id == Item.record_pk).where(Item.benchmark_id == bid)).all()
        for k in range(N_SCORERS):
            f = Path(tmp) / f"s{k}.jsonl"
            with f.open("w", encoding="utf-8") as fh:
                for rid, g, p, win in items:
                    fh.write(json.dumps({"record_id": rid, "group": g, "prompt_index": p, "scores": {
                        f"response{i}": rng.random() + (0.3 * k if f"response{i}" == win else 0) for i in range(1, 5)}}) + "\n")
            import_scores(engine=engine, benchmark_id=bid, path=f, name=f"model-{k}")
        fit_s = None
        if fit:
            t0 = time.perf_counter()
            A.artifact_checks(engine=engine, benchmark_id=bid)
            fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        report = build_report(engine=engine, benchmark_id=bid)
        report_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        art = A.cached_artifact_checks(engine=engine, benchmark_id=bid)
        cache_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        tables_only = write_paper(out_dir=Path(tmp) / "p1", report=report, artifacts=art, figures=False)
        tables_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        full = write_paper(out_dir=Path(tmp) / "p2", report=report, artifacts=art, figures=True)
        full_s = time.perf_counter() - t0
        dispose_engines()
    print(f"items: {len(items)}, labels: {n_labels}, annotators: {N_ANNOTATORS}, scorers: {N_SCORERS}")
    if fit_s is not None:
        print(f"artifact checks fit (once, cached): {fit_s:.1f} s")
    print(f"build_report (1,000 draws, {N_SCORERS} scorers): {report_s:.2f} s; artifact cache read: {cache_s:.2f} s")
    print(f"write_paper tables+numbers+macros: {tables_s:.2f} s ({tables_only.n_numbers} numbers, {tables_only.n_macros} macros)")
    print(f"write_paper with figures (SVG+PDF): {full_s:.2f} s ({len(full.files)} files)")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
