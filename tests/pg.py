"""A throwaway PostgreSQL for the tests marked ``postgres``.

``RMGAP_ANNOT_TEST_PG`` (a SQLAlchemy URL to a server where the user may
CREATE DATABASE) wins; otherwise, when PostgreSQL's binaries are installed
(``make test`` installs Debian's ``postgresql`` as root), a private cluster is
started on 127.0.0.1 with a free port, trust auth and a socket under /tmp,
and removed afterwards. PostgreSQL refuses to run as root, so as root the
cluster runs as the ``postgres`` system user (or ``nobody``).

Every test gets its own fresh database on that server, so tests never see
each other's rows.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from sqlalchemy.engine import make_url

ENV_VAR = "RMGAP_ANNOT_TEST_PG"


class PgUnavailable(RuntimeError):
    """No server URL given and no binaries to start one: the tests skip with this reason."""


def _bindir() -> Path | None:
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).parent
    for cand in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(cand) / "initdb").exists() and (Path(cand) / "pg_ctl").exists():
            return Path(cand)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_as() -> str | None:
    """The unprivileged account to run the server as (None: ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise PgUnavailable("running as root and no unprivileged 'postgres' or 'nobody' user to run PostgreSQL as")


class PgServer:
    """A running server; ``fresh_database()`` hands out per-test databases."""

    def __init__(self, admin_url: str, cluster: "Cluster | None" = None):
        self.admin_url = admin_url
        self.cluster = cluster

    def _admin_exec(self, sql: str) -> None:
        import psycopg

        url = make_url(self.admin_url)
        conn = psycopg.connect(
            host=url.host or "127.0.0.1", port=url.port or 5432, user=url.username,
            password=url.password, dbname=url.database or "postgres", autocommit=True,
        )
        try:
            conn.execute(sql)
        finally:
            conn.close()

    @contextmanager
    def fresh_database(self) -> Iterator[str]:
        name = "rmgap_test_" + uuid.uuid4().hex[:12]
        self._admin_exec(f'CREATE DATABASE "{name}"')
        url = make_url(self.admin_url).set(drivername="postgresql+psycopg", database=name)
        try:
            yield url.render_as_string(hide_password=False)
        finally:
            from rmgap_annot.db import dispose_engines

            dispose_engines()  # close pooled connections, or DROP DATABASE waits on them
            self._admin_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Cluster:
    def __init__(self) -> None:
        bindir = _bindir()
        if bindir is None:
            raise PgUnavailable(
                f"no PostgreSQL: set {ENV_VAR} to a server URL, or install the binaries "
                "(as root, `make test` runs scripts/system-deps.sh which apt-get installs postgresql)"
            )
        self.bindir = bindir
        self.user = _run_as()
        self.root = Path(tempfile.mkdtemp(prefix="rmgap-pg-"))
        self.data = self.root / "data"
        self.sock = self.root / "sock"
        self.sock.mkdir()
        self.port = _free_port()
        if self.user is not None:
            pw = pwd.getpwnam(self.user)
            for p in (self.root, self.sock):
                os.chown(p, pw.pw_uid, pw.pw_gid)

    def _cmd(self, *args: str) -> list[str]:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        return ["runuser", "-u", self.user, "--", *cmd] if self.user else cmd

    def start(self) -> str:
        env = {**os.environ, "LC_ALL": "C"}
        subprocess.run(
            self._cmd("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"),
            check=True, capture_output=True, env=env, cwd="/tmp",
        )
        opts = f"-p {self.port} -h 127.0.0.1 -k {self.sock} -c fsync=off -c max_connections=200"
        subprocess.run(
            self._cmd("pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.root / "log"), "-w", "-t", "60", "start"),
            check=True, capture_output=True, env=env, cwd="/tmp",
        )
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        subprocess.run(self._cmd("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop"), capture_output=True, cwd="/tmp")
        shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def pg_server() -> Iterator[PgServer]:
    """The configured server, or a throwaway cluster for the duration of the block."""
    url = os.environ.get(ENV_VAR)
    if url:
        yield PgServer(url)
        return
    cluster = Cluster()
    try:
        admin = cluster.start()
    except subprocess.CalledProcessError as exc:
        cluster.stop()
        raise PgUnavailable(f"could not start a throwaway PostgreSQL: {exc.stderr.decode(errors='replace')[-400:]}") from exc
    try:
        yield PgServer(admin, cluster)
    finally:
        cluster.stop()
