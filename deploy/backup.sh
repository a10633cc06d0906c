#!/bin/sh
# Back up the database named by RMGAP_ANNOT_DB into BACKUP_DIR, then delete
# backups older than KEEP_DAYS. SQLite: `rmgap-annot backup` (online backup
# API, verified with PRAGMA integrity_check). PostgreSQL: pg_dump (custom
# format; restore with pg_restore). The password never appears on a command
# line: pg_dump reads it from PGPASSWORD, set from the URL here.
set -eu
: "${RMGAP_ANNOT_DB:?set RMGAP_ANNOT_DB (see /etc/rmgap-annot/env)}"
BACKUP_DIR="${BACKUP_DIR:-/var/backups/rmgap-annot}"
KEEP_DAYS="${KEEP_DAYS:-30}"
VENV="${VENV:-/srv/rmgap-annot/.venv}"
stamp="$(date -u +%Y-%m-%dT%H%M%SZ)"
umask 077
mkdir -p "$BACKUP_DIR"

case "$RMGAP_ANNOT_DB" in
  postgresql*)
    eval "$("$VENV/bin/python" - <<'PY'
import os, shlex
from sqlalchemy.engine import make_url
u = make_url(os.environ["RMGAP_ANNOT_DB"])
for k, v in (("PGHOST", u.host), ("PGPORT", u.port), ("PGUSER", u.username), ("PGPASSWORD", u.password), ("PGDATABASE", u.database)):
    if v is not None:
        print(f"export {k}={shlex.quote(str(v))}")
PY
)"
    pg_dump --format=custom --file="$BACKUP_DIR/rmgap-$stamp.dump"
    ;;
  sqlite*)
    "$VENV/bin/rmgap-annot" backup --out "$BACKUP_DIR/rmgap-$stamp.sqlite"
    ;;
  *)
    echo "backup.sh: unsupported database URL (SQLite or PostgreSQL)" >&2
    exit 2
    ;;
esac

find "$BACKUP_DIR" -maxdepth 1 -name 'rmgap-*' -type f -mtime +"$KEEP_DAYS" -delete
