"""The payment CSV: what a researcher uploads to a platform to approve and pay participants.

One row per participant, with the figures a payment decision rests on
(status, real labels, minutes worked) and whether they were shown the
completion code. Written through the tool's one formula-safe CSV writer
(``csv_cells.write_csv``): participant ids come from outside, and a
spreadsheet must never run one as a formula.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

import pandas as pd

from rmgap_annot.crowd.quality import NO_SUBMITTED, STATUSES
from rmgap_annot.csv_cells import write_csv

COLUMNS = ("participant_id", "platform", "status", "labels", "minutes_worked", "completion_code_given")
NOT_AVAILABLE = f"n/a ({NO_SUBMITTED})"


@dataclass(frozen=True)
class PaymentRow:
    participant_id: str
    platform: str
    status: str
    labels: int  # real labels only: checks and qualification items are not what the quota counts
    minutes_worked: Optional[float]  # None when nothing was submitted
    completion_code_given: bool


def payment_csv(rows: Iterable[PaymentRow], path: str | Path | None = None) -> Optional[str]:
    """Write the rows (in the order given) as CSV to ``path``, or return the text when ``path`` is None.

    Minutes are rounded to 0.1; an undefined figure is written as
    ``n/a (reason)`` rather than a blank a spreadsheet would sum as 0; the
    completion code column is ``yes``/``no``.
    """
    records = []
    for row in rows:
        if row.status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, not {row.status!r}")
        records.append({
            "participant_id": row.participant_id, "platform": row.platform, "status": row.status,
            "labels": int(row.labels),
            "minutes_worked": f"{row.minutes_worked:.1f}" if row.minutes_worked is not None else NOT_AVAILABLE,
            "completion_code_given": "yes" if row.completion_code_given else "no",
        })
    frame = pd.DataFrame(records, columns=list(COLUMNS))
    return write_csv(frame, path)
