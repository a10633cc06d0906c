"""Unexpected errors: a short id for the person on the page, the traceback for the server log.

A traceback on an annotator's screen shows server paths and SQL, and tells
them nothing they can act on. The page shows an id; the same id is in the
server's log next to the full traceback, so the researcher can find it.
"""

from __future__ import annotations

import logging
import secrets
import sys

log = logging.getLogger("rmgap_annot.errors")
if not log.handlers:
    # Streamlit configures only its own loggers; without a handler here the
    # traceback would go to logging's last-resort handler, or nowhere.
    _handler = logging.StreamHandler(sys.stderr)
    _handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    log.addHandler(_handler)
    log.setLevel(logging.ERROR)
    log.propagate = False


def report_unexpected(exc: BaseException) -> str:
    """Log ``exc`` with its traceback under a new error id; returns the id."""
    error_id = secrets.token_hex(4)
    log.error("error id %s: %s", error_id, type(exc).__name__, exc_info=exc)
    return error_id


def message_for(error_id: str) -> str:
    """What the person sees: no exception text (it can hold SQL, paths or values), only the id and what to do."""
    return (
        f"Something went wrong on the server (error id {error_id}). If you were submitting a label, it was not saved: "
        "try again. If it happens again, give this error id to your researcher."
    )
