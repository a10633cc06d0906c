"""Temporary files a SIGKILLed export, score export or backup leaves behind are removed by the next run.

A writer is killed for real (SIGKILL, so no cleanup code runs) after it made
its temporary file or folder beside the destination; the next run of the
same command removes it. A live writer's files are kept.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from rmgap_annot.export import Rule, write_export
from rmgap_annot.scores_io import export_scores, import_scores
from rmgap_annot.tempfiles import STALE_AFTER_HOURS, clean_stale, temp_path

ROOT = Path(__file__).resolve().parents[1]


def _killed_writer(target: Path, kind: str, *, folder: bool) -> Path:
    """Start a process that makes its temporary path beside ``target`` and waits; SIGKILL it."""
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from rmgap_annot.tempfiles import temp_path
        tmp = temp_path(Path({str(target)!r}), {kind!r})
        {"tmp.mkdir(); (tmp / 'labels.csv').write_text('half')" if folder else "tmp.write_text('half')"}
        print(tmp, flush=True)
        time.sleep(120)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    left = Path(proc.stdout.readline().strip())
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert left.exists()
    return left


@pytest.fixture
def live_process():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield proc.pid
    proc.kill()
    proc.wait()


def test_a_killed_export_leaves_nothing_after_the_next_export(engine, benchmark_id, tmp_path):
    out = tmp_path / "verified"
    tmp_dir = _killed_writer(out, "tmp", folder=True)
    old_dir = _killed_writer(out, "old", folder=True)
    # The Export page names each export by time: a killed one never shares the next one's name.
    other_name = _killed_writer(tmp_path / "verified-20260101-120000", "tmp", folder=True)
    write_export(engine=engine, benchmark_id=benchmark_id, out_dir=out, rule=Rule.of(min_labels=1))
    assert not tmp_dir.exists() and not old_dir.exists() and not other_name.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".verified")) == []


def test_a_killed_score_export_is_cleaned(engine, benchmark_id, small_records, tmp_path):
    import json

    rec = small_records[0]
    src = tmp_path / "scores.jsonl"
    src.write_text(json.dumps({"record_id": rec["id"], "group": 0, "prompt_index": 0,
                               "scores": {r["key"]: 1.0 for r in rec["responses"]}}) + "\n")
    import_scores(engine=engine, benchmark_id=benchmark_id, path=src, name="s")
    out = tmp_path / "out.jsonl"
    left = _killed_writer(out, "tmp", folder=False)
    export_scores(engine=engine, benchmark_id=benchmark_id, scorer_name="s", out=out)
    assert not left.exists() and [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


def test_a_killed_backup_is_cleaned(cli, engine, tmp_path):
    out = tmp_path / "copy.sqlite"
    left = _killed_writer(out, "partial", folder=False)
    legacy = tmp_path / f".copy.sqlite.partial-{left.name.split('-')[1]}"  # the name backups used before
    legacy.write_bytes(b"half")
    journal = Path(str(left) + "-journal")
    journal.write_bytes(b"half")
    assert cli("backup", "--out", str(out)).exit_code == 0
    assert not left.exists() and not legacy.exists() and not journal.exists()
    assert list(tmp_path.glob(".copy.sqlite.*")) == []


def test_a_live_writers_files_are_kept_unless_too_old(tmp_path, live_process):
    target = tmp_path / "verified"
    live = tmp_path / f".verified.tmp-{live_process}-0abc1234"
    live.mkdir()
    stale = tmp_path / f".verified.old-{live_process}-0def5678"
    stale.mkdir()
    long_ago = time.time() - (STALE_AFTER_HOURS + 1) * 3600
    os.utime(stale, (long_ago, long_ago))
    mine = temp_path(target)
    mine.mkdir()
    unrelated = [tmp_path / ".verified.tmp-notapid", tmp_path / ".other.tmp-999999999-ab", tmp_path / "verified.tmp-999999999-0123abcd",
                 tmp_path / ".other.partial-999999999"]  # not ours: wrong shape, not hidden, or an old-style name of another file
    for p in unrelated:
        p.write_text("keep")
    removed = clean_stale(target)
    assert removed == [stale]
    assert live.exists() and mine.exists() and all(p.exists() for p in unrelated)
