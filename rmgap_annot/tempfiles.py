"""Temporary files beside their destination, and the cleanup of abandoned ones.

Every file or folder the tool writes atomically is first written under a
hidden name beside its destination and renamed into place. A process killed
with SIGKILL never reaches its cleanup, so such names carry the writer's
process id: the next run removes those whose writer is gone (or that are
older than STALE_AFTER_HOURS, in case the id was reused).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import time
from pathlib import Path

STALE_AFTER_HOURS = 24
KINDS = ("tmp", "old", "partial")


def temp_path(target: Path, kind: str = "tmp") -> Path:
    """A fresh hidden path beside ``target``: ``.NAME.KIND-PID-RANDOM``."""
    assert kind in KINDS
    return target.with_name(f".{target.name}.{kind}-{os.getpid()}-{secrets.token_hex(4)}")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    except OSError:
        return False
    return True


def clean_stale(target: Path, *, max_age_hours: float = STALE_AFTER_HOURS) -> list[Path]:
    """Remove temporary files and folders left by dead writers beside ``target``; returns what was removed.

    Considered: every name this module makes in ``target``'s folder
    (``.NAME.tmp|old|partial-PID-XXXXXXXX``, whatever NAME: the Export page
    writes to a new folder name each time, so a killed export's leftovers
    never share the next one's name), plus the ``.NAME.partial-PID`` of older
    backups of ``target`` itself. A live writer's are kept unless older than
    ``max_age_hours`` (its process id may have been reused).
    """
    kinds = "|".join(KINDS)
    ours = re.compile(rf"^\..+\.(?:{kinds})-(\d+)-[0-9a-f]{{8}}(?:-journal|-wal|-shm)?$")
    legacy = re.compile(rf"^\.{re.escape(target.name)}\.partial-(\d+)(?:-journal|-wal|-shm)?$")
    removed: list[Path] = []
    folder = target.parent
    if not folder.is_dir():
        return removed
    now = time.time()
    for child in folder.iterdir():
        match = ours.match(child.name) or legacy.match(child.name)
        if not match:
            continue
        try:
            age_h = (now - child.lstat().st_mtime) / 3600
        except FileNotFoundError:
            continue
        if _pid_alive(int(match.group(1))) and age_h < max_age_hours:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)
        removed.append(child)
    return removed
