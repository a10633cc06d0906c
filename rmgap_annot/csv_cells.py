"""CSV cells a spreadsheet will not run as formulas, and back.

Excel, LibreOffice and Google Sheets treat a cell starting with ``=``, ``+``,
``-`` or ``@`` (and, in some, tab or carriage return) as a formula, so an
annotator's comment ``=HYPERLINK(...)`` or an imported annotator name
``+cmd|...`` would run on the researcher's machine. Following OWASP's advice,
every CSV this tool writes prefixes such a cell with a single quote ``'``.

To make that reversible, a cell that already starts with ``'`` gets one more,
so ``restore`` removes exactly one leading quote from any cell starting with
``'`` and the labels import gives back the original text. Parquet and JSONL
are not spreadsheets' formats and keep the raw text.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
QUOTE = "'"


def neutralise(value: Any) -> Any:
    """``value`` with a leading ``'`` when a spreadsheet could read it as a formula (strings only)."""
    if isinstance(value, str) and value.startswith((*FORMULA_STARTS, QUOTE)):
        return QUOTE + value
    return value


def restore(value: Any) -> Any:
    """Undo ``neutralise``: one leading ``'`` removed from a string that has one."""
    if isinstance(value, str) and value.startswith(QUOTE):
        return value[1:]
    return value


def write_csv(frame: pd.DataFrame, path: str | Path | None = None) -> str | None:
    """Write ``frame`` as CSV with every text cell neutralised (headers are the tool's own names).

    The one CSV writer of the tool: the labels export, the Results download
    and the verified export's labels.csv all go through it. With no ``path``
    the CSV text is returned.
    """
    safe = frame.copy()
    for col in safe.columns:
        if safe[col].dtype == object or pd.api.types.is_string_dtype(safe[col].dtype):
            safe[col] = safe[col].map(neutralise)
    # CRLF line ends (RFC 4180): the csv module quotes a cell holding any
    # character of the line terminator, so a bare carriage return inside a
    # comment is quoted instead of silently starting a new row.
    return safe.to_csv(path, index=False, lineterminator="\r\n")


def blank(value: Any) -> bool:
    """An empty cell, however the reader gave it: None, NaN (pandas), or only white space."""
    return value is None or (isinstance(value, float) and math.isnan(value)) or (isinstance(value, str) and not value.strip())


def as_int(value: Any) -> int:
    """A whole-number cell: an int, a float with no fraction (JSONL, pandas), or its text; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return int(str(value).strip())
