"""deploy/ and the production Streamlit settings: what can be checked without a server.

(nginx in front of two app servers runs in tests/e2e/test_proxy.py.)
"""

from __future__ import annotations

import glob
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from rmgap_annot.db import init_db

ROOT = Path(__file__).resolve().parents[1]
tomllib = pytest.importorskip("tomllib")  # Python 3.11+
DEPLOY = ROOT / "deploy"


def test_streamlit_config_names_real_options_with_production_values():
    from streamlit import config

    config.get_config_options()
    settings = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    flat = {f"{section}.{name}": value for section, opts in settings.items() for name, value in opts.items()}
    unknown = [k for k in flat if k not in config._config_options]  # noqa: SLF001 - a typo would be ignored silently
    assert unknown == []
    assert flat["client.showErrorDetails"] == "none"  # no traceback even outside app.py's guard
    assert flat["server.enableXsrfProtection"] is True and flat["server.enableStaticServing"] is False
    assert flat["server.fileWatcherType"] == "none" and flat["server.runOnSave"] is False
    assert flat["server.enableAgentApi"] is False and flat["client.allowedOrigins"] == []


def test_the_systemd_unit_runs_the_app_on_localhost_only():
    unit = (DEPLOY / "rmgap-annot@.service").read_text()
    (exec_start,) = [line for line in unit.splitlines() if line.startswith("ExecStart=")]
    assert "streamlit run server.py" in exec_start and "--server.address 127.0.0.1" in exec_start and "%i" in exec_start
    assert "EnvironmentFile=/etc/rmgap-annot/env" in unit  # the database URL is never on a command line


def _backup(env_db: str, out: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "RMGAP_ANNOT_DB": env_db, "BACKUP_DIR": str(out), "VENV": str(Path(sys.executable).parent.parent),
           "PYTHONPATH": str(ROOT)}
    return subprocess.run(["sh", str(DEPLOY / "backup.sh")], env=env, capture_output=True, text=True, timeout=120)


def test_backup_script_makes_a_verified_sqlite_copy_and_drops_old_ones(tmp_path):
    url = f"sqlite:///{tmp_path / 'live.sqlite'}"
    init_db(url)
    out = tmp_path / "backups"
    out.mkdir()
    old = out / "rmgap-2000-01-01T000000Z.sqlite"
    old.write_text("old")
    os.utime(old, (0, 0))
    res = _backup(url, out)
    assert res.returncode == 0, res.stderr
    (copy,) = out.glob("rmgap-*.sqlite")  # the old one is gone
    with sqlite3.connect(copy) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT count(*) FROM alembic_version").fetchone() == (1,)


@pytest.mark.postgres
def test_backup_script_dumps_postgresql(pg_url, tmp_path, monkeypatch):
    pg_dump = shutil.which("pg_dump") or next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_dump"), reverse=True)), None)
    if pg_dump is None:
        pytest.skip("pg_dump is not installed")
    monkeypatch.setenv("PATH", f"{Path(pg_dump).parent}:{os.environ['PATH']}")
    init_db(pg_url)
    res = _backup(pg_url, tmp_path)
    assert res.returncode == 0, res.stderr
    (dump,) = tmp_path.glob("rmgap-*.dump")
    assert dump.read_bytes()[:5] == b"PGDMP"  # pg_dump's custom format


def test_the_systemd_units_pass_systemd_analyze_verify(tmp_path):
    analyze = shutil.which("systemd-analyze") or pytest.skip("systemd-analyze is not installed")
    srv = tmp_path / "srv"
    srv.mkdir()
    (srv / ".venv").symlink_to(Path(sys.executable).parent.parent)  # a venv with streamlit and rmgap-annot
    (srv / "deploy").symlink_to(DEPLOY)
    units = tmp_path / "units"
    units.mkdir()
    for name in ("rmgap-annot@.service", "rmgap-annot-backup.service", "rmgap-annot-backup.timer"):
        (units / name).write_text((DEPLOY / name).read_text().replace("/srv/rmgap-annot", str(srv)))
    res = subprocess.run([analyze, "verify", "rmgap-annot@8501.service", "rmgap-annot-backup.service", "rmgap-annot-backup.timer"],
                         cwd=units, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and not res.stderr.strip(), res.stderr
