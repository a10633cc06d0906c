"""Background scoring jobs for the Reward models page.

A job is a separate process (``python -m rmgap_annot.cli score ... --job-id
N``) in its own session: a Streamlit script thread is stopped whenever its
user navigates away or reruns, and a model load must not die with it. The
worker writes its progress into the ScoringJob row; the page only polls that
row. The worker's pid is kept in ``options_json`` so a worker that died
without a word (killed, out of memory) shows as failed instead of
"running" forever.

The database URL reaches the worker through its environment
(``RMGAP_ANNOT_DB``), never its command line: a PostgreSQL URL may hold a
password, and any local user can read every process's arguments with ``ps``,
while ``/proc/PID/environ`` is readable only by the worker's owner.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Optional

from sqlalchemy import select
from sqlalchemy.engine import Engine

from rmgap_annot.db import session_scope
from rmgap_annot.models import ScoringJob, utcnow

# CLI flags a job may carry, by ScoringOptions field name.
OPTION_FLAGS = {
    "device": "--device", "dtype": "--dtype", "batch_size": "--batch-size", "max_length": "--max-length",
    "output_index": "--output-index", "aggregation": "--aggregation", "judge_mode": "--judge-mode",
    "endpoint": "--endpoint", "seed": "--seed",
}


@dataclass(frozen=True)
class JobView:
    id: int
    scorer_name: str
    spec: str
    status: str
    done: int
    total: int
    error: Optional[str]
    started_at: datetime
    finished_at: Optional[datetime]
    phase: Optional[str] = None  # what a running job is doing (loading model, preparing inputs, scoring)

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else (1.0 if self.status == "done" else 0.0)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A finished child of this process stays a zombie until reaped.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def _reap(pid: int) -> bool:
    """Collect a finished worker's exit status, so it does not linger as ``<defunct>``.

    Returns True once the process is gone (or is not this process's child).
    """
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return done != 0


def command_for(*, job_id: int, spec: str, name: str, benchmark: Optional[str], items: str,
                options: dict[str, Any], trust_remote_code: bool = False) -> list[str]:
    cmd = [sys.executable, "-m", "rmgap_annot.cli", "score", "--scorer", spec, "--name", name,
           "--items", items, "--job-id", str(job_id), "--no-progress"]
    if benchmark:
        cmd += ["--benchmark", benchmark]
    for field, flag in OPTION_FLAGS.items():
        if options.get(field) not in (None, ""):
            cmd += [flag, str(options[field])]
    if trust_remote_code:
        cmd.append("--trust-remote-code")
    return cmd


def start_job(*, engine: Engine, db_url: str, spec: str, name: str, benchmark: Optional[str] = None, items: str = "all",
              options: Optional[dict[str, Any]] = None, trust_remote_code: bool = False, log_dir: str | Path | None = None) -> int:
    """Queue a job row and launch its worker process; returns the job id at once.

    The worker's output goes to ``<exports>/scoring-job-N.log`` (``log_dir``).
    """
    from rmgap_annot.settings import get_settings

    options = dict(options or {})
    log_dir = log_dir if log_dir is not None else get_settings().exports_dir
    with session_scope(engine, write=True) as session:
        job = ScoringJob(scorer_name=name, spec=spec, options_json=json.dumps({"options": options, "items": items}))
        session.add(job)
        session.flush()
        job_id = job.id
    cmd = command_for(job_id=job_id, spec=spec, name=name, benchmark=benchmark, items=items,
                      options=options, trust_remote_code=trust_remote_code)
    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    with open(log_dir / f"scoring-job-{job_id}.log", "ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                                env={**os.environ, "RMGAP_ANNOT_DB": db_url})
    with session_scope(engine, write=True) as session:
        job = session.get(ScoringJob, job_id)
        data = json.loads(job.options_json)
        data["pid"] = proc.pid
        job.options_json = json.dumps(data)
        session.add(job)
    return job_id


def mark_running(*, engine: Engine, job_id: int) -> None:
    with session_scope(engine, write=True) as session:
        job = session.get(ScoringJob, job_id)
        if job is not None:
            job.status = "running"
            data = json.loads(job.options_json or "{}")
            data["pid"] = os.getpid()
            data["phase"] = "starting"
            job.options_json = json.dumps(data)
            session.add(job)


def report_phase(*, engine: Engine, job_id: int, phase: str) -> None:
    """Say what the worker is doing now (kept in ``options_json``: no schema change)."""
    with session_scope(engine, write=True) as session:
        job = session.get(ScoringJob, job_id)
        if job is not None:
            data = json.loads(job.options_json or "{}")
            data["phase"] = phase
            job.options_json = json.dumps(data)
            session.add(job)


def report_progress(*, engine: Engine, job_id: int, done: int, total: int) -> None:
    with session_scope(engine, write=True) as session:
        job = session.get(ScoringJob, job_id)
        if job is not None:
            job.done, job.total = done, total
            session.add(job)


def finish_job(*, engine: Engine, job_id: int, error: Optional[str] = None) -> None:
    with session_scope(engine, write=True) as session:
        job = session.get(ScoringJob, job_id)
        if job is not None:
            job.status = "failed" if error else "done"
            job.error = error
            job.finished_at = utcnow()
            session.add(job)


def list_jobs(*, engine: Engine, limit: int = 20) -> list[JobView]:
    """Recent jobs, newest first; a 'running' job whose worker is gone is marked failed."""
    with session_scope(engine, write=True) as session:
        jobs = session.execute(select(ScoringJob).order_by(ScoringJob.id.desc()).limit(limit)).scalars().all()
        for job in jobs:
            if job.status in ("queued", "running"):
                pid = json.loads(job.options_json or "{}").get("pid")
                if pid and not _pid_alive(int(pid)):
                    job.status, job.error, job.finished_at = "failed", job.error or "the worker process exited without finishing", utcnow()
                    session.add(job)
            else:
                # The worker writes "done" just before it exits: reap it on a later poll.
                data = json.loads(job.options_json or "{}")
                if data.get("pid") and not data.get("reaped") and _reap(int(data["pid"])):
                    data["reaped"] = True
                    job.options_json = json.dumps(data)
                    session.add(job)
        return [JobView(j.id, j.scorer_name, j.spec, j.status, j.done, j.total, j.error, j.started_at, j.finished_at,
                        json.loads(j.options_json or "{}").get("phase")) for j in jobs]


def newly_finished(seen: set[int] | None, recent: list[JobView]) -> tuple[bool, set[int]]:
    """Whether a job finished since the page last looked, and the finished ids to remember.

    The Reward models page polls jobs in a fragment; when one finishes, the
    scorer list and comparisons outside the fragment are stale, so the page
    reruns as a whole. ``seen`` is None on the first look (nothing to report).
    """
    done = {j.id for j in recent if j.status == "done"}
    return (seen is not None and bool(done - seen)), done
