"""The page's background job: a real worker process reporting into ScoringJob."""

from __future__ import annotations

import json
import time

from rmgap_annot.jobs import list_jobs, start_job
from rmgap_annot.scoring.runner import item_ids


def wait_for(engine, job_id, timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = next(j for j in list_jobs(engine=engine) if j.id == job_id)
        if job.status in ("done", "failed"):
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} still {job.status} after {timeout}s")


def test_job_runs_outside_the_caller_and_reports_progress(engine, db_url, benchmark_id, tmp_path):
    ok = start_job(engine=engine, db_url=db_url, spec="random", name="rnd", options={"seed": 3, "batch_size": 16}, log_dir=tmp_path)
    bad = start_job(engine=engine, db_url=db_url, spec="scalar:/no/such/model", name="broken", log_dir=tmp_path)
    done = wait_for(engine, ok)
    assert (done.status, done.done, done.total, done.fraction) == ("done", 96, 96, 1.0), (tmp_path / f"scoring-job-{ok}.log").read_text()
    failed = wait_for(engine, bad)
    assert failed.status == "failed" and "does not exist" in failed.error
    assert len(item_ids(engine=engine, benchmark_id=benchmark_id)) == 96


def test_worker_gets_the_database_url_from_its_environment_not_its_command_line(engine, db_url, benchmark_id, tmp_path):
    """A PostgreSQL URL may hold a password; ``ps`` shows every user a process's arguments."""
    from pathlib import Path

    from sqlalchemy import select

    from rmgap_annot.db import session_scope
    from rmgap_annot.models import ScoringJob

    job_id = start_job(engine=engine, db_url=db_url, spec="random", name="rnd", log_dir=tmp_path)
    with session_scope(engine) as s:
        pid = json.loads(s.execute(select(ScoringJob.options_json).where(ScoringJob.id == job_id)).scalar_one())["pid"]
    # Read at once: the worker is still importing its modules (it needs seconds before it can finish).
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    assert b"rmgap_annot.cli" in argv and b"score" in argv  # the capture sees the worker
    db_path = db_url.removeprefix("sqlite:///").encode()
    assert not [a for a in argv if db_path in a or b"sqlite" in a or b"--db" == a], argv
    assert f"RMGAP_ANNOT_DB={db_url}".encode() in environ
    assert wait_for(engine, job_id).status == "done"
