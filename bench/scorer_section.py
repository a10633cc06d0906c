"""How long the reward-model comparison takes with RMGAP's 24 scorers on the full benchmark.

The data of bench/report_speed.py (13,164 items, about 40,000 labels from 12
annotators) plus N synthetic scorers (default 24, RMGAP's count) with
scores for every item, written straight into the Score table (1.26 million
rows). The scorers are of every kind the metrics must handle: continuous
scores, a noisy oracle, a 1-10 judge (many ties), a prompt-blind scorer
(Consistency 1), scorers with NaN scores, and one that scored only the
labelled half of the items (incomplete groups). Times ``scorer_section``
(as the report calls it, with the report's picks and record draws),
``side_by_side`` (the Reward models page) and ``build_report`` with and
without scorers, wall and CPU (the machine is shared: CPU seconds compare
better under load). Prints the figures quoted in the README (section
perf-scorers).

    .venv/bin/python bench/scorer_section.py [N_SCORERS] [--runs R]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report_speed import labelled_benchmark  # noqa: E402
from sqlalchemy import select  # noqa: E402

from rmgap_annot.stats.comparison import picks_from_summary, scorer_section, side_by_side  # noqa: E402
from rmgap_annot.db import dispose_engines, session_scope  # noqa: E402
from rmgap_annot.exclusions import counted_labels  # noqa: E402
from rmgap_annot.stats.human_metrics import human_accuracy, item_summary, record_draws  # noqa: E402
from rmgap_annot.models import Item, Record, Scorer  # noqa: E402
from rmgap_annot.report import build_report  # noqa: E402

KEYS = ("response1", "response2", "response3", "response4")
KINDS = ("noisy-oracle", "random", "judge-1-10", "prompt-blind", "nan-5pct", "labelled-half")


def scorer_scores(kind: str, items: list, rng: np.random.Generator) -> list[tuple]:
    """(item_id, key, value) rows of one synthetic scorer of this kind."""
    n = len(items)
    winner = np.array([KEYS.index(w) for _, _, w in items])
    if kind == "prompt-blind":
        # One score per response of a record, whatever the prompt: RMGAP's BoN 0.25, Consistency 1.
        per_record: dict = {}
        values = np.array([per_record.setdefault(r, rng.normal(size=4)) for _, r, _ in items])
    elif kind == "judge-1-10":
        values = np.clip(np.round(rng.normal(5.5, 2, size=(n, 4))), 1, 10)
        values[np.arange(n), winner] = np.clip(values[np.arange(n), winner] + rng.integers(0, 3, size=n), 1, 10)
    else:
        values = rng.normal(size=(n, 4))
        if kind != "random":
            values[np.arange(n), winner] += rng.uniform(0.3, 1.5)
    rows = []
    keep = np.ones(n, dtype=bool) if kind != "labelled-half" else rng.random(n) < 0.5
    nan_item = rng.random(n) < (0.05 if kind == "nan-5pct" else 0.0)
    for i, (item_id, _, _) in enumerate(items):
        if not keep[i]:
            continue
        nan_key = int(rng.integers(4)) if nan_item[i] else -1
        for k, key in enumerate(KEYS):
            rows.append((item_id, key, None if k == nan_key else float(values[i, k])))
    return rows


def seed_scorers(engine, benchmark_id: int, n_scorers: int, seed: int = 0) -> int:  # noqa: ANN001
    """N scorers with scores written in bulk (import_scores would validate 1.26M rows first: slow and beside the point)."""
    rng = np.random.default_rng(seed)
    with session_scope(engine) as session:
        items = session.execute(
            select(Item.id, Record.record_id, Item.winner_key).join(Record, Record.id == Item.record_pk)
            .where(Item.benchmark_id == benchmark_id).order_by(Item.id)
        ).all()
    n_rows = 0
    with session_scope(engine, write=True) as session:
        ids = []
        for s in range(n_scorers):
            scorer = Scorer(name=f"rm{s:02d}-{KINDS[s % len(KINDS)]}", family="imported", spec="bench", fingerprint=f"bench:{s}")
            session.add(scorer)
            session.flush()
            ids.append(scorer.id)
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        for s, scorer_id in enumerate(ids):
            rows = scorer_scores(KINDS[s % len(KINDS)], items, rng)
            cur.executemany("INSERT INTO score (scorer_id, item_id, response_key, value, truncated) VALUES (?, ?, ?, ?, 0)",
                            [(scorer_id, *r) for r in rows])
            n_rows += len(rows)
        raw.commit()
    finally:
        raw.close()
    return n_rows


def timed(fn):  # noqa: ANN001, ANN201
    """(result, wall seconds, CPU seconds of this process)."""
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def report_line(name: str, runs: list[tuple[float, float]]) -> str:
    walls, cpus = [w for w, _ in runs], [c for _, c in runs]
    return (f"{name}: median {statistics.median(walls):.2f} s wall, {statistics.median(cpus):.2f} s CPU "
            f"(best {min(walls):.2f} s wall / {min(cpus):.2f} s CPU over {len(runs)} runs)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("n_scorers", nargs="?", type=int, default=24)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dump", type=Path, help="write the scorer section and side_by_side as JSON (to compare two versions)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        engine, bid, n_labels = labelled_benchmark(Path(tmp), random.Random(0))
        n_scores = seed_scorers(engine, bid, args.n_scorers)
        print(f"labels: {n_labels}, scorers: {args.n_scorers}, score rows: {n_scores}")
        print(f"load average before: {', '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores")

        labels = counted_labels(engine=engine, benchmark_id=bid).labels
        summary = item_summary(labels)
        rdraws = record_draws(summary)
        human = human_accuracy(summary=summary, labels=labels, draws_by_domain=rdraws)
        picks = picks_from_summary(summary)
        runs = {"scorer_section": [], "side_by_side": [], "report": [], "report_no_scorers": []}
        section = page = None
        for _ in range(args.runs):
            section, wall, cpu = timed(lambda: scorer_section(engine=engine, benchmark_id=bid, human=human, picks=picks,
                                                              human_draws=rdraws))
            runs["scorer_section"].append((wall, cpu))
            page, wall, cpu = timed(lambda: side_by_side(engine=engine, benchmark_id=bid))
            runs["side_by_side"].append((wall, cpu))
            _, wall, cpu = timed(lambda: build_report(engine=engine, benchmark_id=bid))
            runs["report"].append((wall, cpu))
            _, wall, cpu = timed(lambda: build_report(engine=engine, benchmark_id=bid, include_scorers=False))
            runs["report_no_scorers"].append((wall, cpu))
        _, wall, cpu = timed(lambda: scorer_section(engine=engine, benchmark_id=bid, human=human, picks=picks, draws=0))
        print(report_line(f"scorer_section, {args.n_scorers} scorers, 1,000 draws", runs["scorer_section"]))
        print(f"scorer_section without intervals (draws=0): {wall:.2f} s wall, {cpu:.2f} s CPU")
        print(report_line("side_by_side (Reward models page, uncached)", runs["side_by_side"]))
        print(report_line(f"build_report with {args.n_scorers} scorers", runs["report"]))
        print(report_line("build_report without scorers", runs["report_no_scorers"]))
        if args.dump:
            args.dump.write_text(json.dumps({"scorers": section, "side_by_side": page}, sort_keys=True, allow_nan=False))
        first = next(iter(section.values()))
        print(f"first scorer BoN Avg {first['BoN']['Avg']:.4f} ci {first['ci']['BoN']['Avg']}")
        dispose_engines()
    print(f"load average after: {', '.join(f'{x:.1f}' for x in os.getloadavg())}; python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
