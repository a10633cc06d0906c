"""Peak memory of importing a gzip bomb: 1 MB on disk, 1 GiB inflated.

Each import kind (benchmark, labels, scores) runs through the real CLI in a
fresh process on a fresh SQLite database; the number is that process's peak
resident set (ru_maxrss), the refusal message included. README quotes it.

    python bench/gzip_bomb.py [--inflated-mib 1024]
"""

from __future__ import annotations

import argparse
import gzip
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = textwrap.dedent("""
    import resource, sys
    from typer.testing import CliRunner
    from rmgap_annot.cli import app
    from rmgap_annot.formats.rmgap import sample_path
    db, kind, bomb = sys.argv[1:4]
    runner = CliRunner()
    assert runner.invoke(app, ["--db", db, "init"]).exit_code == 0
    assert runner.invoke(app, ["--db", db, "import-benchmark", str(sample_path())]).exit_code == 0
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    args = {"benchmark": ["import-benchmark"], "labels": ["labels", "import"], "scores": ["scores", "import"]}[kind]
    result = runner.invoke(app, ["--db", db, *args, bomb])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"{kind:<9} exit {result.exit_code}  peak RSS {peak / 1024:7.0f} MiB (before the import {base / 1024:.0f} MiB)  {result.output.strip()[:120]!r}")
""")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--inflated-mib", type=int, default=1024)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        block = b"\n" * (1 << 20)
        for kind in ("benchmark", "labels", "scores"):
            bomb = Path(tmp) / ("bomb.csv.gz" if kind == "labels" else "bomb.jsonl.gz")
            if not bomb.exists():
                with gzip.open(bomb, "wb", compresslevel=9) as fh:
                    for _ in range(args.inflated_mib):
                        fh.write(block)
            print(f"{bomb.name}: {bomb.stat().st_size:,} bytes on disk, {args.inflated_mib} MiB inflated")
            db = f"sqlite:///{Path(tmp) / f'{kind}.sqlite'}"
            subprocess.run([sys.executable, "-c", CHILD, db, kind, str(bomb)], check=True, cwd=ROOT)


if __name__ == "__main__":
    main()
