"""`rmgap-annot backup`: a consistent, verified copy of a database that is being written."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

from sqlalchemy import func, select

from rmgap_annot.db import get_engine, init_db, session_scope
from rmgap_annot.maintenance import integrity_check
from rmgap_annot.models import Invite, User

# Each transaction writes a user *and* its invite: a copy that caught half a
# transaction would hold a user without an invite (or the reverse).
WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from rmgap_annot.db import get_engine, session_scope
    from rmgap_annot.models import Invite, User, utcnow
    from datetime import timedelta

    engine = get_engine(sys.argv[1])
    stop = Path(sys.argv[2])
    i = 0
    while not stop.exists():
        with session_scope(engine, write=True) as s:
            u = User(name=f"w{i}", role="annotator")
            s.add(u)
            s.flush()
            s.add(Invite(user_id=u.id, token_hash=f"h{i}", expires_at=utcnow() + timedelta(days=1)))
        i += 1
        print(i, flush=True)
    """
)


def _counts(url: str) -> tuple[int, int]:
    with session_scope(get_engine(url)) as s:
        users = s.execute(select(func.count()).select_from(User)).scalar_one()
        invites = s.execute(select(func.count()).select_from(Invite)).scalar_one()
    return users, invites


def test_backup_of_a_live_database_is_consistent_and_opens(cli, engine, benchmark_id, db_url, tmp_path):
    stop = tmp_path / "stop"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, db_url, str(stop)], stdout=subprocess.PIPE, text=True)
    try:
        # Wait until the writer is really writing before taking copies.
        assert writer.stdout.readline().strip() == "1"
        copies = []
        for n in range(3):
            out = tmp_path / f"copy{n}.sqlite"
            result = cli("backup", "--out", str(out))
            assert result.exit_code == 0, result.output
            assert "integrity_check: ok" in result.output
            copies.append(out)
            time.sleep(0.05)
    finally:
        stop.touch()
        writer.wait(timeout=60)
    assert writer.returncode == 0
    seen = []
    for out in copies:
        assert integrity_check(out) == "ok"
        url = f"sqlite:///{out}"
        users, invites = _counts(url)
        assert users == invites >= 1
        seen.append(users)
        # The copy opens like any database: migrations are current and the CLI reads it.
        init_db(url)
        from typer.testing import CliRunner

        from rmgap_annot.cli import app

        status = CliRunner().invoke(app, ["--db", url, "status"], catch_exceptions=False)
        assert status.exit_code == 0 and "items:" in status.output and "96" in status.output
    assert seen == sorted(seen)
    final_users, _ = _counts(db_url)
    assert seen[-1] <= final_users


def test_backup_refuses_to_overwrite_without_force(cli, engine, tmp_path):
    out = tmp_path / "copy.sqlite"
    out.write_bytes(b"precious")
    refused = cli("backup", "--out", str(out))
    assert refused.exit_code == 2 and "--force" in refused.output
    assert out.read_bytes() == b"precious"
    forced = cli("backup", "--out", str(out), "--force")
    assert forced.exit_code == 0, forced.output
    assert integrity_check(out) == "ok"
    assert not list(tmp_path.glob(".copy.sqlite.partial-*"))


def test_backup_of_postgres_points_to_pg_dump(tmp_path):
    from typer.testing import CliRunner

    from rmgap_annot.cli import app

    result = CliRunner().invoke(app, ["--db", "postgresql+psycopg://u@127.0.0.1:1/x", "backup", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert "pg_dump" in result.output
    assert not (tmp_path / "x").exists()


def test_backup_of_a_missing_database_is_a_clear_error(tmp_path):
    from typer.testing import CliRunner

    from rmgap_annot.cli import app

    result = CliRunner().invoke(app, ["--db", f"sqlite:///{tmp_path / 'none.sqlite'}", "backup", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "no database file" in result.output
