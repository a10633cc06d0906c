"""bench/load.py at a small size: concurrent annotators lose nothing and double nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

LOAD = Path(__file__).resolve().parent.parent / "bench" / "load.py"


def run_load(*args: str) -> dict:
    proc = subprocess.run([sys.executable, str(LOAD), "--json", *args], capture_output=True, text=True, timeout=300)
    assert proc.stdout.strip(), proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]) | {"rc": proc.returncode}


def test_concurrent_annotators_on_sqlite_keep_every_label_and_no_extra():
    annotators, items = 8, 15
    r = run_load("--annotators", str(annotators), "--items", str(items))
    assert r["first_error"] is None, r["first_error"]
    assert r["failures"] == 0 and r["locked_errors"] == 0
    assert r["acknowledged_but_missing"] == 0
    assert r["duplicate_annotator_item"] == 0
    assert r["items_over_target"] == 0
    # Supply exceeds demand at this size, so everyone finishes their items.
    assert r["labels"] == annotators * items
    assert r["rc"] == 0
