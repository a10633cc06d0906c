"""How long the released benchmark's import takes, on a file of its size and shape.

Generates 1,097 RMGAP-shaped records (the release's domain mix, long-tailed
response lengths), then times parse+validate and the full import into a
fresh SQLite file, and the no-op re-import. Run: .venv/bin/python bench/import_speed.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rmgap_annot.formats.rmgap import import_benchmark, parse_file  # noqa: E402
from rmgap_annot.db import dispose_engines, get_engine, init_db  # noqa: E402
from rmgap_annot.synthetic import make_records, write_jsonl  # noqa: E402


def main(repeats: int = 3) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = write_jsonl(Path(tmp) / "test.jsonl", make_records())
        size_mb = path.stat().st_size / 1e6
        parse_s, import_s, reimport_s = [], [], []
        for i in range(repeats):
            t = time.perf_counter()
            parsed = parse_file(path)
            parse_s.append(time.perf_counter() - t)
            url = f"sqlite:///{tmp}/bench{i}.sqlite"
            init_db(url)
            engine = get_engine(url)
            t = time.perf_counter()
            result = import_benchmark(engine=engine, path=path)
            import_s.append(time.perf_counter() - t)
            t = time.perf_counter()
            import_benchmark(engine=engine, path=path)
            reimport_s.append(time.perf_counter() - t)
            dispose_engines()
        n_items = sum(c["items"] for c in result.counts.values())
        print(f"file: {len(parsed.records)} records, {n_items} items, {size_mb:.1f} MB")
        print(f"parse+validate: median {statistics.median(parse_s):.2f} s")
        print(f"full import (validate + write): median {statistics.median(import_s):.2f} s (runs: {', '.join(f'{s:.2f}' for s in import_s)})")
        print(f"re-import of the same file (no-op): median {statistics.median(reimport_s):.2f} s")


if __name__ == "__main__":
    main()
