"""How long the artifact checks take on the full benchmark's size, and how fast the cached result reads.

13,164 items (RMGAP's 1,097 records, synthetic texts with RMGAP-like
long-tailed response lengths) in a temporary SQLite file, 3 labels per item
from 12 annotators (report_speed.py's labels), the bundled organic sample.
Fits the shallow-cue ceiling and the organic-vs-tailored classifier (1,000
bootstrap draws each) from scratch twice, then reads the cached result (which
re-reads the labels for the human columns) three times. Prints the figures
quoted in the README (section perf-artifacts).

    .venv/bin/python bench/artifacts_speed.py
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report_speed import seed_labels  # noqa: E402

from rmgap_annot.formats.rmgap import import_benchmark  # noqa: E402
from rmgap_annot.db import dispose_engines, get_engine, init_db  # noqa: E402
from rmgap_annot.stats.artifacts import (  # noqa: E402
    artifact_checks, cached_artifact_checks, organic_sample_path, read_organic_prompts,
)
from rmgap_annot.synthetic import make_records, write_jsonl  # noqa: E402


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = write_jsonl(Path(tmp) / "rmgap.jsonl", make_records(long_text=True))
        url = f"sqlite:///{Path(tmp) / 'bench.sqlite'}"
        init_db(url)
        engine = get_engine(url)
        bid = import_benchmark(engine=engine, path=path, name="rmgap").benchmark_id
        n_labels = seed_labels(engine, bid, random.Random(0))
        organic = read_organic_prompts(organic_sample_path())
        fits, cpus, stages = [], [], []
        for _ in range(2):
            marks: list[tuple[str, float]] = []
            t0, c0 = time.perf_counter(), time.process_time()
            result = artifact_checks(engine=engine, benchmark_id=bid, organic=organic, refit=True,
                                     progress=lambda step: marks.append((step, time.perf_counter())))
            fits.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
            marks.append(("joining the people's columns", time.perf_counter()))
            stages = [(a[0], b[1] - a[1]) for a, b in zip(marks, marks[1:])]
        reads = []
        for _ in range(3):
            t0 = time.perf_counter()
            cached = cached_artifact_checks(engine=engine, benchmark_id=bid, organic=organic)
            reads.append(time.perf_counter() - t0)
        assert cached is not None and cached["cached"]
        dispose_engines()
    sc = result["shallow_cue"]
    print(f"items: {sc['n_items']:,}, records: {sc['n_records']:,}, labels: {n_labels:,}, organic prompts: {result['organic']['n_organic']}")
    print(f"fit from scratch: median {statistics.median(fits):.1f} s (runs: {', '.join(f'{t:.1f}' for t in fits)}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores); CPU time {', '.join(f'{t:.1f}' for t in cpus)} s")
    for step, secs in stages:
        print(f"  {secs:6.2f} s  {step}")
    print(f"cached read incl. human columns: median {statistics.median(reads):.2f} s (runs: {', '.join(f'{t:.2f}' for t in reads)})")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    m = sc["methods"]
    print(f"BoN Avg: shallow model {m['shallow_model']['BoN']['Avg']:.3f}, TF-IDF {m['tfidf_cosine']['BoN']['Avg']:.3f}, "
          f"longest {m['longest']['BoN']['Avg']:.3f}; people {result['human']['BoN']['Avg']:.3f}; top cue {sc['top_feature']}")
    print(f"organic vs tailored AUC {result['organic']['auc']:.3f}, top feature {result['organic']['top_feature']}")
    print(f"python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
