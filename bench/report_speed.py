"""How long the full report takes on the full benchmark's size, intervals included.

13,164 items (RMGAP's 1,097 records, synthetic texts) in a temporary SQLite
file, 3 labels per item from 12 annotators (about 40,000 labels, bulk
inserted, some "Can't decide", display orders and timings), then
``build_report`` with 1,000 record-bootstrap draws. Prints the figures quoted in
the README (section perf-analytics).

    .venv/bin/python bench/report_speed.py [--scorers N]

``--scorers N`` adds N synthetic reward models (scores bulk inserted for every
item and response), so the scorer comparison and the verified-subset section
(each scorer on verified vs rest items) are timed too.
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

from sqlalchemy import insert, select

from rmgap_annot.formats.rmgap import import_benchmark
from rmgap_annot.db import dispose_engines, get_engine, init_db, session_scope
from rmgap_annot.models import Item, Label, Record, Response, Score, Scorer, User, utcnow
from rmgap_annot.report import build_report
from rmgap_annot.synthetic import make_records, write_jsonl

LABELS_PER_ITEM = 3
N_ANNOTATORS = 12


def seed_labels(engine, benchmark_id: int, rng: random.Random) -> int:
    from rmgap_annot.assignment import get_study

    study_id = get_study(engine=engine, benchmark_id=benchmark_id).id
    with session_scope(engine, write=True) as session:
        users = []
        for i in range(N_ANNOTATORS):
            u = User(name=f"annotator{i:02d}", role="annotator")
            session.add(u)
            session.flush()
            users.append(u.id)
        items = session.execute(select(Item.id, Item.winner_key).where(Item.benchmark_id == benchmark_id)).all()
        keys = [f"response{i}" for i in range(1, 5)]
        now = utcnow()
        rows = []
        for item_id, winner in items:
            for uid in rng.sample(users, LABELS_PER_ITEM):
                r = rng.random()
                choice = winner if r < 0.55 else (None if r < 0.6 else rng.choice(keys))
                order = keys[:]
                rng.shuffle(order)
                shown = now - timedelta(seconds=rng.uniform(3, 120))
                rows.append(
                    {
                        "study_id": study_id, "user_id": uid, "item_id": item_id, "choice_key": choice,
                        "displayed_order_json": json.dumps(order), "naturalness": rng.randint(2, 5),
                        "source": "ui", "shown_at": shown, "first_submitted_at": now, "submitted_at": now, "revisions": 0,
                    }
                )
        session.execute(insert(Label), rows)
    return len(rows)


def time_referee(engine, benchmark_id: int) -> list[float]:
    """The ``referee`` section alone, on the report's own inputs (what it adds to ``build_report``)."""
    try:
        from rmgap_annot.stats import referee
    except ImportError:  # code before the referee analyses
        return []
    from rmgap_annot.exclusions import counted_labels
    from rmgap_annot.stats.human_metrics import item_summary, record_draws

    summary = item_summary(counted_labels(engine=engine, benchmark_id=benchmark_id).labels)
    draws = record_draws(summary)
    times = []
    for _ in range(5):
        t0, c0 = time.perf_counter(), time.process_time()
        styles = referee.load_styles(engine=engine, benchmark_id=benchmark_id)
        referee.referee_section(summary, draws, styles, {})
        times.append((time.perf_counter() - t0, time.process_time() - c0))
    return times


def paired_referee_cost(engine, benchmark_id: int, rounds: int = 7) -> list[float]:
    """build_report with the referee section minus without it, back to back (so machine load cancels out)."""
    import rmgap_annot.report as rep

    if not hasattr(rep, "_referee"):
        return []
    real = rep._referee
    out = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        build_report(engine=engine, benchmark_id=benchmark_id)
        with_it = time.perf_counter() - t0
        rep._referee = lambda *a, **k: {}
        try:
            t0 = time.perf_counter()
            build_report(engine=engine, benchmark_id=benchmark_id)
            without = time.perf_counter() - t0
        finally:
            rep._referee = real
        out.append(with_it - without)
    return out


def seed_scorers(engine, benchmark_id: int, n: int, rng: random.Random) -> None:
    """N reward models: the winner scores highest on a share of items that grows with the model's index."""
    with session_scope(engine, write=True) as session:
        items = session.execute(select(Item.id, Item.winner_key, Item.record_pk).where(Item.benchmark_id == benchmark_id)).all()
        keys: dict[int, list[str]] = {}
        for pk, key in session.execute(select(Response.record_pk, Response.key).join(Record, Record.id == Response.record_pk)
                                       .where(Record.benchmark_id == benchmark_id)).all():
            keys.setdefault(pk, []).append(key)
        for s in range(n):
            scorer = Scorer(name=f"rm{s:02d}", family="imported", spec="bench")
            session.add(scorer)
            session.flush()
            skill = 0.4 + 0.4 * s / max(n - 1, 1)
            rows = []
            for item_id, winner, pk in items:
                right = rng.random() < skill
                for k in keys[pk]:
                    v = rng.random()
                    rows.append({"scorer_id": scorer.id, "item_id": item_id, "response_key": k,
                                 "value": v + (1.0 if k == winner and right else 0.0)})
            session.execute(insert(Score), rows)


def labelled_benchmark(folder: Path, rng: random.Random):  # noqa: ANN201
    """The full synthetic RMGAP benchmark (13,164 items) in a SQLite file under ``folder``, labelled by
    N_ANNOTATORS simulated people: (engine, benchmark id, number of labels). Every bench starts here."""
    path = write_jsonl(folder / "rmgap.jsonl", make_records(long_text=False))
    url = f"sqlite:///{folder / 'bench.sqlite'}"
    init_db(url)
    engine = get_engine(url)
    bid = import_benchmark(engine=engine, path=path, name="rmgap").benchmark_id
    return engine, bid, seed_labels(engine, bid, rng)


def main() -> None:
    n_scorers = int(sys.argv[sys.argv.index("--scorers") + 1]) if "--scorers" in sys.argv else 0
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as tmp:
        engine, bid, n_labels = labelled_benchmark(Path(tmp), rng)
        if n_scorers:
            seed_scorers(engine, bid, n_scorers, rng)
        import rmgap_annot.report as report_module

        verdict_times: list[float] = []
        if hasattr(report_module, "_verdict"):  # time the verified-subset section and the verdict on their own
            inner = report_module._verdict

            def timed(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
                t0 = time.perf_counter()
                inner(*args, **kwargs)
                verdict_times.append(time.perf_counter() - t0)

            report_module._verdict = timed
        section_times: dict[str, list[float]] = {}
        try:  # time the benchmark_metrics and ratings sections on their own (code before them: skipped)
            from rmgap_annot import format_sections

            for fname in ("benchmark_metrics_section", "ratings_report_section"):
                def timed_section(*args, _inner=getattr(format_sections, fname), _name=fname, **kwargs):  # noqa: ANN002, ANN003, ANN202
                    t0 = time.perf_counter()
                    out = _inner(*args, **kwargs)
                    section_times.setdefault(_name, []).append(time.perf_counter() - t0)
                    return out

                setattr(format_sections, fname, timed_section)
        except ImportError:
            pass
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            report = build_report(engine=engine, benchmark_id=bid)
            times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        build_report(engine=engine, benchmark_id=bid, draws=0)
        no_ci = time.perf_counter() - t0
        t0 = time.perf_counter()
        text = json.dumps(report)
        dump = time.perf_counter() - t0
        referee_times = time_referee(engine, bid)
        paired = paired_referee_cost(engine, bid)
        dispose_engines()
    n_items = len(report["items"])
    print(f"items labelled: {n_items}, labels: {n_labels}, annotators: {N_ANNOTATORS}, reward models: {n_scorers}")
    print(
        f"build_report, 1,000 bootstrap draws: median {statistics.median(times):.2f} s, best {min(times):.2f} s "
        f"(runs: {', '.join(f'{t:.2f}' for t in times)}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
    )
    if verdict_times:
        share = statistics.median(verdict_times[:5]) / statistics.median(times)
        print(f"of which verified_subset + verdict: median {statistics.median(verdict_times[:5]):.2f} s ({share:.0%} of the report)")
    for name, ts in section_times.items():
        print(f"of which {name}: median {statistics.median(ts[:5]):.3f} s ({statistics.median(ts[:5]) / statistics.median(times):.1%} of the report)")
    print(f"build_report without intervals: {no_ci:.2f} s")
    print(f"json.dumps of the report: {dump:.2f} s, {len(text) / 1e6:.1f} MB")
    if referee_times:
        wall, cpu = zip(*referee_times)
        print(f"of which the referee section (styles read + three analyses): median {statistics.median(wall):.2f} s, "
              f"best {min(wall):.2f} s wall; median {statistics.median(cpu):.2f} s CPU")
    if paired:
        print(f"build_report with minus without the referee section, alternated 7 times in one process: median "
              f"{statistics.median(paired):+.2f} s (each: {', '.join(f'{d:+.2f}' for d in paired)})")
    print(f"pick alpha All: {report['agreement']['choice_alpha']['All']}")
    print(f"python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
