"""The page's background job: a real worker process reporting into ScoringJob."""

from __future__ import annotations

import json
import time

from rmgap_annot.jobs import command_for, list_jobs, start_job
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
    db_path = db_url.removeprefix("sqlite:///")
    # The command a worker gets, whatever the timing: no URL, no --db.
    cmd = command_for(job_id=job_id, spec="random", name="rnd", benchmark=None, items="all", options={})
    assert "score" in cmd and not [a for a in cmd if db_path in a or "sqlite" in a or a == "--db"], cmd
    # The real process, read at once (a worker that already exited has no cmdline left to read).
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0") if argv != [b""] else []
    if argv != [b""]:
        assert b"rmgap_annot.cli" in argv and b"score" in argv  # the capture sees the worker
        assert not [a for a in argv if db_path.encode() in a or b"sqlite" in a or b"--db" == a], argv
        assert f"RMGAP_ANNOT_DB={db_url}".encode() in environ
    assert wait_for(engine, job_id).status == "done"
def test_a_finished_worker_is_reaped_not_left_defunct(engine, db_url, benchmark_id, tmp_path):
    import json
    from pathlib import Path

    from rmgap_annot.db import session_scope
    from rmgap_annot.models import ScoringJob

    job_id = start_job(engine=engine, db_url=db_url, spec="random", name="rnd2", options={"seed": 1}, log_dir=tmp_path)
    assert wait_for(engine, job_id).status == "done"
    with session_scope(engine) as s:
        pid = json.loads(s.get(ScoringJob, job_id).options_json)["pid"]
    proc = Path(f"/proc/{pid}")
    deadline = time.monotonic() + 30
    while proc.exists() and time.monotonic() < deadline:  # the page keeps polling the job list
        list_jobs(engine=engine)
        time.sleep(0.2)
    assert not proc.exists(), f"worker {pid} left behind: {(proc / 'stat').read_text() if proc.exists() else ''}"


def test_the_page_learns_when_a_job_finished_so_it_can_redraw_the_scorer_list(engine, db_url, benchmark_id, tmp_path):
    from rmgap_annot.jobs import newly_finished

    changed, seen = newly_finished(None, list_jobs(engine=engine))  # first look: nothing to report
    assert not changed and seen == set()
    job_id = start_job(engine=engine, db_url=db_url, spec="random", name="rnd3", options={"seed": 2}, log_dir=tmp_path)
    wait_for(engine, job_id)
    changed, seen = newly_finished(seen, list_jobs(engine=engine))
    assert changed and job_id in seen
    assert newly_finished(seen, list_jobs(engine=engine))[0] is False  # reported once


def test_a_job_says_its_phase_before_the_first_batch(engine, db_url, benchmark_id, tmp_path):
    from rmgap_annot.jobs import report_phase
    from rmgap_annot.scoring.runner import run_scoring

    seen: list[str] = []
    run_scoring(engine=engine, benchmark_id=benchmark_id, spec="random", name="rnd4", phase=seen.append)
    assert seen == ["loading model", "preparing inputs", "scoring"]
    # A job row carries the phase for the page, from the worker's first second.
    job_id = start_job(engine=engine, db_url=db_url, spec="random", name="rnd5", log_dir=tmp_path)
    report_phase(engine=engine, job_id=job_id, phase="loading model")
    job = next(j for j in list_jobs(engine=engine) if j.id == job_id)
    assert job.phase in ("loading model", "starting", "preparing inputs", "scoring")
    assert wait_for(engine, job_id).phase == "scoring"  # the worker's own reports, last one kept
